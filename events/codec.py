"""msgpack encoding of events, and decoding that refuses to guess.

The codec sits apart from the models so the wire format (plain msgpack maps, times as
RFC 3339 strings) is decided in one place. Decoding upcasts old versions step by step
to the current one; anything it cannot read for certain (not msgpack, an unknown type,
a version newer than this code, fields that do not validate) raises a
``DecodeError`` for the reader to skip and report, never a half-read event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import ValidationError

from events.service import (
    Event,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceUpdated,
)

__all__ = [
    "CURRENT_VERSIONS",
    "DecodeError",
    "FutureVersion",
    "InvalidEvent",
    "NotAnEvent",
    "UnknownEventType",
    "decode",
    "encode",
    "invalid",
    "unpack",
]

MODELS: dict[str, type[Event]] = {
    "ServiceCreated": ServiceCreated,
    "ServiceUpdated": ServiceUpdated,
    "ServiceDeleted": ServiceDeleted,
    "ServiceForceDeleted": ServiceForceDeleted,
}

CURRENT_VERSIONS: dict[str, int] = {
    name: model.model_fields["version"].default for name, model in MODELS.items()
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _created_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added ``service.labels``: a version-1 service has none."""
    service = raw.get("service")
    if isinstance(service, dict) and "labels" not in service:
        return {**raw, "service": {**service, "labels": {}}}
    return raw


# (type, version) -> function turning that version's map into the next version's.
UPCASTERS: dict[tuple[str, int], Upcaster] = {("ServiceCreated", 1): _created_v1_to_v2}


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


def encode(event: Event) -> bytes:
    packed: bytes = msgpack.packb(event.model_dump(mode="json", exclude_none=False))
    return packed


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
    raw, event_type, version = unpack(data)
    model = MODELS.get(event_type)
    if model is None:
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
