"""The event contract: models, codec, subjects and stream of the SkyFlow service log.

This package depends on nothing else in the project; ``EVENTS.md`` describes the same
contract for subscribers written in other languages.
"""

from events.codec import (
    CURRENT_VERSIONS,
    DecodeError,
    FutureVersion,
    InvalidEvent,
    NotAnEvent,
    UnknownEventType,
    decode,
    encode,
)
from events.envelope import EventEnvelope, format_time, new_event_id, utc_now
from events.service import (
    DEFAULT_NAMESPACE,
    Event,
    Port,
    Protocol,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceType,
)
from events.stream import STREAM_NAME, StreamSpec
from events.subjects import SUBJECTS, filter_for, parse_subject, subject_for

__all__ = [
    "CURRENT_VERSIONS",
    "DEFAULT_NAMESPACE",
    "STREAM_NAME",
    "SUBJECTS",
    "DecodeError",
    "Event",
    "EventEnvelope",
    "FutureVersion",
    "InvalidEvent",
    "NotAnEvent",
    "Port",
    "Protocol",
    "Service",
    "ServiceCreated",
    "ServiceDeleted",
    "ServiceType",
    "StreamSpec",
    "UnknownEventType",
    "decode",
    "encode",
    "filter_for",
    "format_time",
    "new_event_id",
    "parse_subject",
    "subject_for",
    "utc_now",
]
