"""What every event is stamped with: a unique id and a time in the one wire format.

No pydantic here, so writers that build events as plain maps use the same stamps.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

__all__ = ["format_time", "new_event_id", "utc_now"]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the one time format on the wire."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex
