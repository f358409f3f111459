"""The Service value and the two events that change it.

A ``ServiceCreated`` carries the whole service, not a diff, so the last event on a
service's subject is that service's state: readers never need earlier events to know
what is live, and other-language subscribers need no fold to act on one event.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.choices import Protocol, ServiceType
from events.envelope import EventEnvelope, Timestamp
from events.names import LabelKey, LabelValue, ResourceName

__all__ = [
    "DEFAULT_NAMESPACE",
    "Event",
    "LiveEvent",
    "Origin",
    "Overridden",
    "Port",
    "PortNumber",
    "Protocol",
    "Service",
    "ServiceCreated",
    "ServiceDeleted",
    "ServiceForceDeleted",
    "ServiceType",
    "ServiceUpdated",
]

DEFAULT_NAMESPACE = "default"

PortNumber = Annotated[int, Field(ge=1, le=65535, strict=True)]


class Port(BaseModel):
    """One port mapping: traffic to ``port`` on the service goes to ``target_port`` on jobs."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    port: PortNumber
    target_port: PortNumber
    protocol: Protocol = Protocol.TCP

    def __str__(self) -> str:
        return f"{self.port}:{self.target_port}/{self.protocol.value}"


class Service(BaseModel):
    """A stable endpoint for the jobs its selector picks, in one namespace."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    namespace: ResourceName = DEFAULT_NAMESPACE
    name: ResourceName
    type: ServiceType = ServiceType.CLUSTER_IP
    selector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    cluster: ResourceName | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)  # the service's own

    @model_validator(mode="after")
    def _canonical(self) -> Self:
        # One validator for both rules: every event read pays for each Python call.
        # The selector is kept in one canonical order, so equal services encode to equal
        # bytes; a port is listed once per protocol.
        for field in ("selector", "labels"):
            mapping = getattr(self, field)
            if len(mapping) > 1 and list(mapping) != sorted(mapping):
                object.__setattr__(self, field, dict(sorted(mapping.items())))
        ports = self.ports
        if len(ports) > 1 and len({(p.port, p.protocol) for p in ports}) != len(ports):
            seen: set[tuple[int, Protocol]] = set()
            for port in ports:
                if (port.port, port.protocol) in seen:
                    raise ValueError(f"port {port.port}/{port.protocol.value} is listed twice")
                seen.add((port.port, port.protocol))
        return self


class ServiceCreated(EventEnvelope):
    """A service came into being; it carries the service in full.

    Version 2 added ``service.labels``; a version-1 event is read as having none.
    """

    type: Literal["ServiceCreated"] = "ServiceCreated"
    version: Literal[2] = 2
    service: Service

    @property
    def namespace(self) -> str:
        return self.service.namespace

    @property
    def name(self) -> str:
        return self.service.name


class Origin(BaseModel):
    """Where a live service began: its create event, whose id is the service's uid."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    time: Timestamp
    actor: str = Field(min_length=1, max_length=256)


class ServiceUpdated(EventEnvelope):
    """A live service changed in place; it carries the service in full after the change,
    and where it began, so a service's last event is still all there is to know of it."""

    type: Literal["ServiceUpdated"] = "ServiceUpdated"
    version: Literal[1] = 1
    service: Service
    created: Origin

    @property
    def namespace(self) -> str:
        return self.service.namespace

    @property
    def name(self) -> str:
        return self.service.name


class ServiceDeleted(EventEnvelope):
    """A live service was removed; only its identity is needed."""

    type: Literal["ServiceDeleted"] = "ServiceDeleted"
    version: Literal[1] = 1
    namespace: ResourceName
    name: ResourceName


class Overridden(BaseModel):
    """The unreadable message a forced delete was written over, and why it was unreadable."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    seq: int = Field(ge=1, strict=True)
    reason: str = Field(max_length=1024)


class ServiceForceDeleted(EventEnvelope):
    """A service was removed over a last event no writer could read (``delete --force``).

    Without it, one unreadable message as a service's last event would wedge the service:
    no writer decides over what it cannot read. It names what it overrode, for auditors.
    """

    type: Literal["ServiceForceDeleted"] = "ServiceForceDeleted"
    version: Literal[1] = 1
    namespace: ResourceName
    name: ResourceName
    overrides: Overridden


Event = ServiceCreated | ServiceUpdated | ServiceDeleted | ServiceForceDeleted
# What a live service's last event is: either carries the whole service.
LiveEvent = ServiceCreated | ServiceUpdated
