"""Live services as readers show them, built from the log without pydantic.

``ServiceView`` has the attributes of ``ServiceRecord`` (``service``, ``created``,
``seq``, ``event_id``, ``actor``, ``key``), with ``events.plain`` values in place of the
models, so the same code renders either. ``RecordLike`` is that common shape.

``read_plain`` is the strict reader of ``registry.entry.read_entry`` on the fast path:
it answers only when ``events.plain`` is certain and the body names the service of its
subject; otherwise it answers None and the caller must use ``read_entry``, which
decodes with the models, and skips and reports what it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from events import plain
from events.choices import Protocol as PortProtocol
from events.choices import ServiceType
from events.plain import PlainPort, PlainService
from events.subjects import parse_subject
from registry.errors import InvalidInput
from registry.stored import StoredMessage

if TYPE_CHECKING:
    from events import Service, ServiceCreated
    from registry.projection import ServiceRecord

__all__ = ["RecordLike", "ServiceLike", "ServiceView", "read_plain"]


class PortLike(Protocol):
    @property
    def port(self) -> int: ...
    @property
    def target_port(self) -> int: ...
    @property
    def protocol(self) -> PortProtocol: ...


class ServiceLike(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> ServiceType: ...
    @property
    def selector(self) -> Mapping[str, str]: ...
    @property
    def ports(self) -> Sequence[PortLike]: ...
    @property
    def cluster(self) -> str | None: ...


class RecordLike(Protocol):
    """What renderers need of a live service: ``ServiceRecord`` and ``ServiceView`` both."""

    @property
    def service(self) -> ServiceLike: ...
    @property
    def created(self) -> datetime: ...
    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def actor(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A live service and where it came from, as ``ServiceRecord`` without the models."""

    service: PlainService
    created: datetime
    seq: int  # stream sequence of the event that created it: its resource version
    event_id: str
    actor: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.service.namespace, self.service.name)

    @classmethod
    def from_raw(cls, seq: int, raw: Mapping[str, Any]) -> ServiceView:
        """From a ``ServiceCreated`` map that ``events.plain.check`` accepted."""
        return cls(
            plain.service_of(raw),
            datetime.fromisoformat(raw["time"]),
            seq,
            raw["id"],
            raw["actor"],
        )

    @classmethod
    def from_event(cls, seq: int, event: ServiceCreated) -> ServiceView:
        return cls(plain_service(event.service), event.time, seq, event.id, event.actor)

    @classmethod
    def from_record(cls, record: ServiceRecord) -> ServiceView:
        return cls(
            plain_service(record.service),
            record.created,
            record.seq,
            record.event_id,
            record.actor,
        )


def service_model(service: PlainService) -> Service:
    """The pydantic ``Service`` of the same values, validated: ``InvalidInput`` naming the
    value if the models refuse what the plain checks let through."""
    from pydantic import ValidationError

    from events import Service

    try:
        return Service.model_validate(
            {
                "namespace": service.namespace,
                "name": service.name,
                "type": service.type,
                "selector": service.selector,
                "ports": [
                    {"port": p.port, "target_port": p.target_port, "protocol": p.protocol}
                    for p in service.ports
                ],
                "cluster": service.cluster,
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "service"
        raise InvalidInput(where, error.get("input", ""), error["msg"]) from None


def plain_service(service: Service) -> PlainService:
    return PlainService(
        namespace=service.namespace,
        name=service.name,
        type=service.type,
        selector=dict(service.selector),
        ports=tuple(PlainPort(p.port, p.target_port, p.protocol) for p in service.ports),
        cluster=service.cluster,
    )


PlainRead = tuple[Literal["ServiceCreated", "ServiceDeleted"], dict[str, Any]]


def read_plain(message: StoredMessage) -> PlainRead | None:
    """``(event type, checked map)`` when certain, None when ``read_entry`` must decide."""
    raw = plain.unpack(message.data)
    kind = plain.check(raw)
    if kind is None:
        return None
    try:
        if plain.identity(raw) != parse_subject(message.subject):
            return None
    except ValueError:
        return None
    return ("ServiceCreated" if kind == plain.CREATED else "ServiceDeleted"), raw
