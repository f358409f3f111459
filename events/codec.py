"""msgpack encoding of events, and decoding that refuses to guess.

The codec sits apart from the models so the wire format (plain msgpack maps, times as
RFC 3339 strings) is decided in one place. Decoding upcasts old versions step by step
to the current one; anything it cannot read for certain (not msgpack, an unknown type,
a version newer than this code, fields that do not validate) raises a
``DecodeError`` for the reader to skip and report, never a half-read event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgpack
from pydantic import BaseModel, ValidationError

from events.address import AddressAllocated, AddressEvent, AddressRangesSet, AddressReleased
from events.audit import BreakAcknowledged
from events.envelope import EventEnvelope
from events.quota import QuotaUsage, ResourceQuotaSet
from events.service import (
    Event,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatusChanged,
    ServiceUpdated,
)
from events.status import ServiceStatusSet

__all__ = [
    "CURRENT_VERSIONS",
    "DecodeError",
    "FutureVersion",
    "InvalidEvent",
    "NotAnEvent",
    "UnknownEventType",
    "decode",
    "decode_acknowledgement",
    "decode_address",
    "decode_quota",
    "decode_ranges",
    "decode_status",
    "decode_usage",
    "encode",
    "invalid",
    "unpack",
]

# Each family of subjects holds its own types; a type found on another family's subject
# is as unreadable there as garbage.
MODELS: dict[str, type[Event]] = {
    "ServiceCreated": ServiceCreated,
    "ServiceUpdated": ServiceUpdated,
    "ServiceStatusChanged": ServiceStatusChanged,
    "ServiceDeleted": ServiceDeleted,
    "ServiceForceDeleted": ServiceForceDeleted,
}
ADDRESS_MODELS: dict[str, type[AddressEvent]] = {
    "AddressAllocated": AddressAllocated,
    "AddressReleased": AddressReleased,
}
RANGES_MODELS: dict[str, type[AddressRangesSet]] = {"AddressRangesSet": AddressRangesSet}
QUOTA_MODELS: dict[str, type[ResourceQuotaSet]] = {"ResourceQuotaSet": ResourceQuotaSet}
USAGE_MODELS: dict[str, type[QuotaUsage]] = {"QuotaUsage": QuotaUsage}
STATUS_MODELS: dict[str, type[ServiceStatusSet]] = {"ServiceStatusSet": ServiceStatusSet}
ACKNOWLEDGED_MODELS: dict[str, type[BreakAcknowledged]] = {"BreakAcknowledged": BreakAcknowledged}
ALL_MODELS: dict[str, type[BaseModel]] = {
    **MODELS,
    **ADDRESS_MODELS,
    **RANGES_MODELS,
    **QUOTA_MODELS,
    **USAGE_MODELS,
    **STATUS_MODELS,
    **ACKNOWLEDGED_MODELS,
}

CURRENT_VERSIONS: dict[str, int] = {
    name: model.model_fields["version"].default for name, model in ALL_MODELS.items()
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _created_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added ``service.labels``: a version-1 service has none."""
    service = raw.get("service")
    if isinstance(service, dict) and "labels" not in service:
        return {**raw, "service": {**service, "labels": {}}}
    return raw


def _without_addresses(raw: dict[str, Any]) -> dict[str, Any]:
    """``ServiceCreated`` v3 and ``ServiceUpdated`` v2 added the service's addresses: an
    older event's service holds none (``cluster_ip`` and every ``node_port`` None), which
    is what the models default to, so the map stays as it is."""
    return raw


def _without_external_name(raw: dict[str, Any]) -> dict[str, Any]:
    """``ServiceCreated`` v4, ``ServiceUpdated`` v3 and ``ServiceStatusChanged`` v2 added
    ``service.external_name``: an older event's service has none, which is what the model
    defaults to."""
    return raw


def _without_port_names(raw: dict[str, Any]) -> dict[str, Any]:
    """``ServiceCreated`` v5, ``ServiceUpdated`` v4 and ``ServiceStatusChanged`` v3 added
    port names (``ports[].name``, a ``target_port`` that names a task's port): an older
    event's ports are unnamed with numeric targets, which the models read as they are."""
    return raw


def _updated_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added ``status``: a version-1 update reported none."""
    return {**raw, "status": None} if "status" not in raw else raw


# (type, version) -> function turning that version's map into the next version's.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("ServiceCreated", 1): _created_v1_to_v2,
    ("ServiceCreated", 2): _without_addresses,
    ("ServiceCreated", 3): _without_external_name,
    ("ServiceCreated", 4): _without_port_names,
    ("ServiceUpdated", 1): _updated_v1_to_v2,
    ("ServiceUpdated", 2): _without_external_name,
    ("ServiceUpdated", 3): _without_port_names,
    ("ServiceStatusChanged", 1): _without_external_name,
    ("ServiceStatusChanged", 2): _without_port_names,
}


class DecodeError(ValueError):
    """The bytes are not an event this code can read for certain."""


class NotAnEvent(DecodeError):
    """Not msgpack, or not a map with a string ``type`` and an integer ``version``."""


class UnknownEventType(DecodeError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class FutureVersion(DecodeError):
    def __init__(self, event_type: str, version: int, supported: int) -> None:
        super().__init__(
            f"{event_type} version {version} is newer than this reader (knows up to {supported});"
            " upgrade skyflow-registry to read it"
        )
        self.event_type = event_type
        self.version = version


class InvalidEvent(DecodeError):
    """A known type and version whose fields do not validate."""


def encode(event: EventEnvelope) -> bytes:
    packed: bytes = msgpack.packb(event.model_dump(mode="json", exclude_none=False))
    return packed


M = TypeVar("M", bound=BaseModel)


def unpack(data: bytes) -> tuple[dict[str, Any], str, int]:
    """A message's map, its type and its version; ``NotAnEvent`` if it has none of them.
    (The one place untrusted bytes become a map, for events and task messages alike.)"""
    try:
        raw = msgpack.unpackb(data)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise NotAnEvent(f"not msgpack ({str(exc) or type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise NotAnEvent(f"expected a map, got {type(raw).__name__}")
    kind, version = raw.get("type"), raw.get("version")
    if not isinstance(kind, str) or type(version) is not int:
        raise NotAnEvent("missing string 'type' or integer 'version'")
    return raw, kind, version


def invalid(kind: str, version: int, exc: ValidationError) -> InvalidEvent:
    """The first field that failed, named by its path."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return InvalidEvent(f"{kind} v{version}: {where}: {first['msg']}")


def decode(data: bytes) -> Event:
    """A service event (what a service subject holds)."""
    return _decode(data, MODELS)


def decode_address(data: bytes) -> AddressEvent:
    """An address record (what an address subject holds)."""
    return _decode(data, ADDRESS_MODELS)


def decode_ranges(data: bytes) -> AddressRangesSet:
    """The address ranges (what the ranges subject holds)."""
    return _decode(data, RANGES_MODELS)


def decode_quota(data: bytes) -> ResourceQuotaSet:
    """A namespace's quota (what a quota subject holds)."""
    return _decode(data, QUOTA_MODELS)


def decode_usage(data: bytes) -> QuotaUsage:
    """A namespace's usage record (what a usage subject holds)."""
    return _decode(data, USAGE_MODELS)


def decode_status(data: bytes) -> ServiceStatusSet:
    """A controller's status report (what a status subject holds)."""
    return _decode(data, STATUS_MODELS)


def decode_acknowledgement(data: bytes) -> BreakAcknowledged:
    """An admin's acknowledgement of an audit break (what the acknowledged subject holds)."""
    return _decode(data, ACKNOWLEDGED_MODELS)


def _decode(data: bytes, models: Mapping[str, type[M]]) -> M:
    raw, event_type, version = unpack(data)
    model = models.get(event_type)
    if model is None:
        if event_type in ALL_MODELS:
            raise InvalidEvent(f"a {event_type} does not belong on this subject")
        raise UnknownEventType(event_type)
    current = CURRENT_VERSIONS[event_type]
    if version > current:
        raise FutureVersion(event_type, version, current)
    while version < current:
        upcast = UPCASTERS.get((event_type, version))
        if upcast is None:
            raise InvalidEvent(f"{event_type} version {version} has no upcaster")
        version += 1
        raw = {**upcast(raw), "version": version}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(event_type, version, exc) from None
