"""Fields every event carries, whatever its type.

They answer the auditor's questions (which event, when, who) and make a retried
publish recognisable (``id`` is also the ``Nats-Msg-Id``). ``prev`` links each event
to the one before it on the same service, so history rewritten behind the registry's
back shows up as a broken chain.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from events.stamps import format_time, new_event_id, utc_now

__all__ = ["EventEnvelope", "Timestamp", "format_time", "new_event_id", "utc_now"]


# Aware (an offset is required) and checked in pydantic's core: a Python validator here
# would cost every event read about a microsecond. Written as UTC by ``format_time``.
Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, ending in Z"}
    ),
]


class EventEnvelope(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    time: Timestamp
    actor: str = Field(min_length=1, max_length=256)
    prev: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
