"""The stream that holds the log, and the settings it must keep to be trusted.

Kept as plain data so the contract does not depend on a client library: the
registry's NATS adapter turns it into a stream configuration and compares a live
stream against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.subjects import SUBJECTS

__all__ = ["STREAM_NAME", "StreamSpec"]

STREAM_NAME = "SKYFLOW_SERVICES"


@dataclass(frozen=True)
class StreamSpec:
    """What the log stream must look like.

    ``required`` are settings that, if different on a live stream, could lose or
    rewrite history: the registry refuses such a stream instead of writing to it.
    """

    name: str = STREAM_NAME
    subjects: tuple[str, ...] = (SUBJECTS,)
    replicas: int = 1
    # Long enough to cover a client's retries after a lost ack or a leader change.
    duplicate_window_s: float = 120.0

    @property
    def required(self) -> dict[str, Any]:
        return {
            "deny_delete": True,
            "deny_purge": True,
            "allow_rollup_hdrs": False,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msgs_per_subject": -1,
            "sealed": False,
        }
