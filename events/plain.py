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


# Strings that passed a pattern, remembered: namespaces, names and labels repeat across
# a log, and a set lookup costs a tenth of a regex match. Bounded, cleared when full.
_MEMO_LIMIT = 200_000
_good_names: set[str] = set()
_good_label_keys: set[str] = set()
_good_label_values: set[str] = set()
_name_match = re.compile(NAME_PATTERN).fullmatch
_label_key_match = re.compile(LABEL_KEY_PATTERN).fullmatch
_label_value_match = re.compile(LABEL_VALUE_PATTERN).fullmatch


def _learn(value: object, match: Callable[[str], object], good: set[str], limit: int) -> bool:
    """Check a string not seen before against its pattern, and remember it if it passes."""
    if type(value) is not str or len(value) > limit or match(value) is None:
        return False
    if len(good) >= _MEMO_LIMIT:
        good.clear()
    good.add(value)
    return True


def _is_name(value: object) -> bool:
    return value in _good_names or _learn(value, _name_match, _good_names, 63)


def unpack(data: bytes) -> Any:
    """The msgpack map of an event, as ``events.codec`` unpacks it; None if not msgpack."""
    try:
        return msgpack.unpackb(data)
    except Exception:  # msgpack raises several unrelated types for garbage
        return None


def _envelope_ok(raw: dict[str, Any], event_type: str) -> bool:
    event_id, time, actor, prev, version = (
        raw["id"],
        raw["time"],
        raw["actor"],
        raw["prev"],
        raw["version"],
    )
    if not (
        type(version) is int
        and version == VERSIONS[event_type]
        and type(event_id) is str
        and _is_id(event_id) is not None
        and type(actor) is str
        and 1 <= len(actor) <= 256
        and (prev is None or (type(prev) is str and _is_prev(prev) is not None))
        and type(time) is str
        and _is_time(time) is not None
    ):
        return False
    try:
        datetime.fromisoformat(time)  # the pattern lets through days that do not exist
    except ValueError:
        return False
    return True


def _service_ok(service: Any) -> bool:
    if type(service) is not dict or service.keys() != _SERVICE_KEYS:
        return False
    names = _good_names
    namespace, name, cluster, kind = (
        service["namespace"],
        service["name"],
        service["cluster"],
        service["type"],
    )
    if not (
        (namespace in names or _learn(namespace, _name_match, names, 63))
        and (name in names or _learn(name, _name_match, names, 63))
        and (cluster is None or cluster in names or _learn(cluster, _name_match, names, 63))
        and type(kind) is str
        and kind in _SERVICE_TYPES
    ):
        return False
    selector = service["selector"]
    if type(selector) is not dict:
        return False
    keys, values = _good_label_keys, _good_label_values
    for key, value in selector.items():
        if not (
            (key in keys or _learn(key, _label_key_match, keys, 317))
            and (value in values or _learn(value, _label_value_match, values, 63))
        ):
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
            and (number, protocol) not in seen
        ):
            return False
        seen.add((number, protocol))
    return True


def check(raw: object) -> str | None:
    """The event type of ``raw`` if it is certainly a valid event; None if not certain."""
    if type(raw) is not dict:
        return None
    try:
        event_type = raw.get("type")
        if event_type == CREATED:
            if (
                raw.keys() == _CREATED_KEYS
                and _envelope_ok(raw, CREATED)
                and _service_ok(raw["service"])
            ):
                return CREATED
        elif event_type == DELETED and (
            raw.keys() == _DELETED_KEYS
            and _envelope_ok(raw, DELETED)
            and _is_name(raw["namespace"])
            and _is_name(raw["name"])
        ):
            return DELETED
    except TypeError:  # an unhashable value where a string belongs
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
