"""The event contract: models, codec, subjects and stream of the SkyFlow service log.

This package depends on nothing else in the project; ``docs/events.md`` describes the same
contract for subscribers written in other languages.

The pydantic models and the codec are imported on first use (``from events import
Service`` works as usual), so code that needs only subjects, names or the stream
definition (the NATS adapter, ``skyctl server``, ``--help``) starts without pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from events.choices import Protocol, ServiceType
from events.stamps import format_time, new_event_id, utc_now
from events.stream import STREAM_NAME, StreamSpec
from events.subjects import (
    ADDRESS_PREFIX,
    ADDRESS_SUBJECTS,
    RANGES_SUBJECT,
    SUBJECTS,
    address_subject,
    filter_for,
    parse_address_subject,
    parse_subject,
    subject_for,
)

if TYPE_CHECKING:
    from events.address import (
        AddressAllocated,
        AddressEvent,
        AddressKind,
        AddressRangesSet,
        AddressReleased,
        Holder,
        NodePortRange,
    )
    from events.codec import (
        CURRENT_VERSIONS,
        DecodeError,
        FutureVersion,
        InvalidEvent,
        NotAnEvent,
        UnknownEventType,
        decode,
        decode_address,
        decode_ranges,
        encode,
    )
    from events.envelope import EventEnvelope
    from events.service import (
        DEFAULT_NAMESPACE,
        HEADLESS,
        Event,
        Ingress,
        LiveEvent,
        LoadBalancerStatus,
        Origin,
        Overridden,
        Port,
        Service,
        ServiceCreated,
        ServiceDeleted,
        ServiceForceDeleted,
        ServiceStatus,
        ServiceStatusChanged,
        ServiceUpdated,
    )

__all__ = [
    "ADDRESS_PREFIX",
    "ADDRESS_SUBJECTS",
    "CURRENT_VERSIONS",
    "DEFAULT_NAMESPACE",
    "HEADLESS",
    "RANGES_SUBJECT",
    "STREAM_NAME",
    "SUBJECTS",
    "AddressAllocated",
    "AddressEvent",
    "AddressKind",
    "AddressRangesSet",
    "AddressReleased",
    "DecodeError",
    "Event",
    "EventEnvelope",
    "FutureVersion",
    "Holder",
    "Ingress",
    "InvalidEvent",
    "LiveEvent",
    "LoadBalancerStatus",
    "NodePortRange",
    "NotAnEvent",
    "Origin",
    "Overridden",
    "Port",
    "Protocol",
    "Service",
    "ServiceCreated",
    "ServiceDeleted",
    "ServiceForceDeleted",
    "ServiceStatus",
    "ServiceStatusChanged",
    "ServiceType",
    "ServiceUpdated",
    "StreamSpec",
    "UnknownEventType",
    "address_subject",
    "decode",
    "decode_address",
    "decode_ranges",
    "encode",
    "filter_for",
    "format_time",
    "new_event_id",
    "parse_address_subject",
    "parse_subject",
    "subject_for",
    "utc_now",
]

_LAZY = {
    "events.codec": (
        "CURRENT_VERSIONS",
        "DecodeError",
        "FutureVersion",
        "InvalidEvent",
        "NotAnEvent",
        "UnknownEventType",
        "decode",
        "decode_address",
        "decode_ranges",
        "encode",
    ),
    "events.envelope": ("EventEnvelope",),
    "events.address": (
        "AddressAllocated",
        "AddressEvent",
        "AddressKind",
        "AddressRangesSet",
        "AddressReleased",
        "Holder",
        "NodePortRange",
    ),
    "events.service": (
        "DEFAULT_NAMESPACE",
        "HEADLESS",
        "Event",
        "Ingress",
        "LoadBalancerStatus",
        "Port",
        "Service",
        "LiveEvent",
        "Origin",
        "Overridden",
        "ServiceCreated",
        "ServiceDeleted",
        "ServiceForceDeleted",
        "ServiceStatus",
        "ServiceStatusChanged",
        "ServiceUpdated",
    ),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
