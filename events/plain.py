"""The wire format read and written without pydantic: for start-up and for replays.

The pydantic models (``events.service``) and ``events.codec`` are the reference. This
module is a second reader and writer of the same bytes, for the two places where the
models cost too much: a one-shot ``skyctl`` process, which would spend most of its life
importing pydantic, and a replay of millions of events.

It never widens the contract. ``check`` accepts a decoded map only when it is certain
the models accept it *and* build the very values this module builds: the canonical
shape every writer of this project produces (all keys present, exact enum spellings,
``...Z`` times, ints that are ints). Anything else, valid or not, gets ``None``, and the
caller must hand the bytes to ``events.codec.decode``, which upcasts, normalises or
refuses them. Tests hold the two readers and the two writers to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgpack

from events.choices import Protocol, ServiceType
from events.names import LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, NAME_PATTERN
from events.stamps import format_time

__all__ = [
    "CREATED",
    "DELETED",
    "PlainPort",
    "PlainService",
    "check",
    "encode_created",
    "encode_deleted",
    "identity",
    "service_of",
    "unpack",
]

CREATED: Final = "ServiceCreated"
DELETED: Final = "ServiceDeleted"
# The schema versions this module knows; a newer current version in events.codec makes
# every such event "not certain" here until this module learns it (a test says so).
VERSIONS: Final = {CREATED: 1, DELETED: 1}

_ENVELOPE = ("id", "time", "actor", "prev", "type", "version")
_CREATED_KEYS = frozenset((*_ENVELOPE, "service"))
_DELETED_KEYS = frozenset((*_ENVELOPE, "namespace", "name"))
_SERVICE_KEYS = frozenset(("namespace", "name", "type", "selector", "ports", "cluster"))
_PORT_KEYS = frozenset(("port", "target_port", "protocol"))
_SERVICE_TYPES = {t.value: t for t in ServiceType}
_PROTOCOLS = {p.value: p for p in Protocol}

_is_id = re.compile(r"[A-Za-z0-9_-]{1,128}").fullmatch
_is_prev = re.compile(r"[0-9a-f]{64}").fullmatch
_is_time = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").fullmatch


class _Seen:
    """A bounded memo of strings that passed one pattern: names repeat across a log."""

    def __init__(self, pattern: str, max_length: int | None = None) -> None:
        self._match: Callable[[str], object] = re.compile(pattern).fullmatch
        self._max_length = max_length
        self._good: set[str] = set()

    def __call__(self, value: object) -> bool:
        if type(value) is not str:
            return False
        good = self._good
        if value in good:
            return True
        if self._match(value) is None:
            return False
        if self._max_length is not None and len(value) > self._max_length:
            return False
        if len(good) >= 200_000:
            good.clear()
        good.add(value)
        return True


_is_name = _Seen(NAME_PATTERN)
_is_label_key = _Seen(LABEL_KEY_PATTERN, max_length=317)
_is_label_value = _Seen(LABEL_VALUE_PATTERN)


def unpack(data: bytes) -> Any:
    """The msgpack map of an event, as ``events.codec`` unpacks it; None if not msgpack."""
    try:
        return msgpack.unpackb(data)
    except Exception:  # msgpack raises several unrelated types for garbage
        return None


def _time_ok(value: object) -> bool:
    if type(value) is not str or _is_time(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:  # a day or hour that does not exist
        return False
    return True


def _envelope_ok(raw: Mapping[str, Any], event_type: str) -> bool:
    prev = raw["prev"]
    actor = raw["actor"]
    version = raw["version"]
    return (
        type(version) is int
        and version == VERSIONS[event_type]
        and type(raw["id"]) is str
        and _is_id(raw["id"]) is not None
        and type(actor) is str
        and 1 <= len(actor) <= 256
        and (prev is None or (type(prev) is str and _is_prev(prev) is not None))
        and _time_ok(raw["time"])
    )


def _service_ok(service: object) -> bool:
    if type(service) is not dict or service.keys() != _SERVICE_KEYS:
        return False
    cluster = service["cluster"]
    if not (
        _is_name(service["namespace"])
        and _is_name(service["name"])
        and type(service["type"]) is str
        and service["type"] in _SERVICE_TYPES
        and (cluster is None or _is_name(cluster))
    ):
        return False
    selector = service["selector"]
    if type(selector) is not dict:
        return False
    for key, value in selector.items():
        if not (_is_label_key(key) and _is_label_value(value)):
            return False
    ports = service["ports"]
    if type(ports) is not list:
        return False
    seen = set()
    for port in ports:
        if type(port) is not dict or port.keys() != _PORT_KEYS:
            return False
        number, target, protocol = port["port"], port["target_port"], port["protocol"]
        if not (
            type(number) is int
            and 1 <= number <= 65535
            and type(target) is int
            and 1 <= target <= 65535
            and type(protocol) is str
            and protocol in _PROTOCOLS
        ):
            return False
        if (number, protocol) in seen:
            return False
        seen.add((number, protocol))
    return True


def check(raw: object) -> str | None:
    """The event type of ``raw`` if it is certainly a valid event; None if not certain."""
    if type(raw) is not dict:
        return None
    event_type = raw.get("type")
    if event_type == CREATED:
        if raw.keys() == _CREATED_KEYS and _envelope_ok(raw, CREATED):
            return CREATED if _service_ok(raw["service"]) else None
        return None
    if event_type == DELETED:
        if (
            raw.keys() == _DELETED_KEYS
            and _envelope_ok(raw, DELETED)
            and _is_name(raw["namespace"])
            and _is_name(raw["name"])
        ):
            return DELETED
        return None
    return None


def identity(raw: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a checked event."""
    if raw["type"] == CREATED:
        service = raw["service"]
        return service["namespace"], service["name"]
    return raw["namespace"], raw["name"]


@dataclass(frozen=True, slots=True)
class PlainPort:
    """A port mapping, as ``events.Port`` has it."""

    port: int
    target_port: int
    protocol: Protocol = Protocol.TCP

    def __str__(self) -> str:
        return f"{self.port}:{self.target_port}/{self.protocol.value}"


@dataclass(frozen=True, slots=True)
class PlainService:
    """A service, as ``events.Service`` has it (same field names and values)."""

    namespace: str
    name: str
    type: ServiceType
    selector: dict[str, str]
    ports: tuple[PlainPort, ...]
    cluster: str | None


def service_of(raw: Mapping[str, Any]) -> PlainService:
    """The service a checked ``ServiceCreated`` map carries."""
    service = raw["service"]
    return PlainService(
        namespace=service["namespace"],
        name=service["name"],
        type=_SERVICE_TYPES[service["type"]],
        selector=dict(sorted(service["selector"].items())),
        ports=tuple(
            PlainPort(p["port"], p["target_port"], _PROTOCOLS[p["protocol"]])
            for p in service["ports"]
        ),
        cluster=service["cluster"],
    )


def _envelope(event_id: str, time: datetime, actor: str, prev: str | None) -> dict[str, Any]:
    return {"id": event_id, "time": format_time(time), "actor": actor, "prev": prev}


def encode_created(
    service: PlainService, *, event_id: str, time: datetime, actor: str, prev: str | None
) -> bytes:
    """The same bytes as ``encode(ServiceCreated(...))`` for the same values."""
    body = {
        **_envelope(event_id, time, actor, prev),
        "type": CREATED,
        "version": VERSIONS[CREATED],
        "service": {
            "namespace": service.namespace,
            "name": service.name,
            "type": service.type.value,
            "selector": dict(sorted(service.selector.items())),
            "ports": [
                {"port": p.port, "target_port": p.target_port, "protocol": p.protocol.value}
                for p in service.ports
            ],
            "cluster": service.cluster,
        },
    }
    packed: bytes = msgpack.packb(body)
    return packed


def encode_deleted(
    namespace: str, name: str, *, event_id: str, time: datetime, actor: str, prev: str | None
) -> bytes:
    """The same bytes as ``encode(ServiceDeleted(...))`` for the same values."""
    body = {
        **_envelope(event_id, time, actor, prev),
        "type": DELETED,
        "version": VERSIONS[DELETED],
        "namespace": namespace,
        "name": name,
    }
    packed: bytes = msgpack.packb(body)
    return packed
