"""The Service value and the events that change it.

Every event that leaves a service live carries the whole service (and, after the first,
where it began and its status), not a diff, so the last event on a service's subject is
that service's state: readers never need earlier events to know what is live, and
other-language subscribers need no fold to act on one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.choices import Protocol, ServiceType
from events.envelope import EventEnvelope, Timestamp
from events.names import IPV4_PATTERN, IPv4, LabelKey, LabelValue, PortName, ResourceName

__all__ = [
    "DEFAULT_NAMESPACE",
    "HEADLESS",
    "ClusterIP",
    "Event",
    "Ingress",
    "LiveEvent",
    "LoadBalancerStatus",
    "Origin",
    "Overridden",
    "Port",
    "PortNumber",
    "Protocol",
    "Service",
    "ServiceCreated",
    "ServiceDeleted",
    "ServiceForceDeleted",
    "ServiceStatus",
    "ServiceStatusChanged",
    "ServiceType",
    "ServiceUpdated",
    "check_new_namespace",
]

DEFAULT_NAMESPACE = "default"


def check_new_namespace(namespace: str) -> str:
    """A namespace a service may be created in: lower case, as Kubernetes' namespaces
    (RFC 1123 labels) are. DNS compares names without case, so ``SHOP`` and ``shop``
    would be one name there; refusing upper case at create keeps namespaces unique
    regardless of case without reading every live one. Only creating is refused: a
    service already live in a namespace written before this rule (the log keeps it)
    can still be read, changed and deleted, so the rule is not in the model."""
    if namespace != namespace.lower():
        raise ValueError(
            f"namespaces are lower case, as in Kubernetes and as DNS compares them "
            f"(use {namespace.lower()!r})"
        )
    return namespace


PortNumber = Annotated[int, Field(ge=1, le=65535, strict=True)]
# A cluster IP as Kubernetes spells it: an IPv4 address, or "None" for a headless
# service (one that asks for no address).
HEADLESS = "None"
ClusterIP = Annotated[str, Field(pattern=rf"^(?:{HEADLESS}|{IPV4_PATTERN[1:-1]})$")]
# An ExternalName's DNS name, as Kubernetes takes it (RFC 1123): lower-case labels of
# letters, digits and hyphens, 63 at most each, 253 in all, an optional final dot.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EXTERNAL_NAME_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*\.?$"
ExternalName = Annotated[str, Field(pattern=EXTERNAL_NAME_PATTERN, min_length=1, max_length=253)]
# Types whose ports each hold a node port, and types that hold a cluster IP.
NODE_PORT_TYPES = frozenset({ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER})


class Port(BaseModel):
    """One port mapping: traffic to ``port`` on the service goes to ``target_port`` on the
    tasks it selects. ``target_port`` is a number, or the name of a port each task
    announces (Kubernetes' named ``targetPort``): two tasks on one host can then serve one
    service on ports of their own."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    port: PortNumber
    target_port: PortNumber | PortName
    protocol: Protocol = Protocol.TCP
    # The port's name (for SRV names, ``_http._tcp.web.shop.svc``); None when unnamed.
    name: PortName | None = None
    # The port on every node that reaches it (NodePort and LoadBalancer services only);
    # allocated by the registry unless asked for, unique across services.
    node_port: PortNumber | None = None

    def __str__(self) -> str:
        return f"{self.port}:{self.target_port}/{self.protocol.value}"

    def target_on(self, task_ports: Mapping[str, int]) -> int | None:
        """Where this port's traffic goes on a task announcing ``task_ports``: the number,
        or the task's port of that name (None: the task has none, so it gets no traffic
        on this port, as a pod without the named container port in Kubernetes)."""
        target = self.target_port
        return target if isinstance(target, int) else task_ports.get(target)


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
    # Its address: allocated by the registry from the service CIDR when it is created
    # (unless asked for, or "None": headless), and kept while it lives. None in a stored
    # event: an ExternalName, or a service created before addresses existed.
    cluster_ip: ClusterIP | None = None
    # An ExternalName service's DNS name (its DNS answers are a CNAME to it); None for
    # every other type, and in events from before it existed.
    external_name: ExternalName | None = None

    @model_validator(mode="after")
    def _canonical(self) -> Self:
        # One validator for every rule: every event read pays for each Python call.
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
        if len(ports) > 1:
            names = [p.name for p in ports if p.name is not None]
            if len(set(names)) != len(names):
                twice = next(n for n in names if names.count(n) > 1)
                raise ValueError(f"port name {twice!r} is given to two ports")
        if self.cluster_ip is not None or any(p.node_port is not None for p in ports):
            self._check_addresses()
        if self.external_name is not None and self.type != ServiceType.EXTERNAL_NAME:
            raise ValueError(f"a {self.type.value} service has no external name")
        return self

    def _check_addresses(self) -> None:
        kind = self.type
        if kind == ServiceType.EXTERNAL_NAME and self.cluster_ip is not None:
            raise ValueError("an ExternalName service has no cluster IP")
        if self.cluster_ip == HEADLESS and kind != ServiceType.CLUSTER_IP:
            raise ValueError(f"a {kind.value} service cannot be headless (clusterIP None)")
        node_ports = [p.node_port for p in self.ports if p.node_port is not None]
        if node_ports and kind not in NODE_PORT_TYPES:
            raise ValueError(f"a {kind.value} service has no node ports")
        if len(set(node_ports)) != len(node_ports):
            twice = next(n for n in node_ports if node_ports.count(n) > 1)
            raise ValueError(f"node port {twice} is listed twice")

    @property
    def headless(self) -> bool:
        return self.cluster_ip == HEADLESS


class ServiceCreated(EventEnvelope):
    """A service came into being; it carries the service in full, with the addresses
    allocated to it (written in the same atomic batch as their ``AddressAllocated``).

    Version 2 added ``service.labels``; a version-1 event is read as having none.
    Version 3 added ``service.cluster_ip`` and ``service.ports[].node_port``; an earlier
    event is read as a service without addresses. Version 4 added
    ``service.external_name``; an earlier event is read as having none. Version 5 added
    ``service.ports[].name`` and a ``target_port`` that may be a port name; an earlier
    event's ports are unnamed, with numbers.
    """

    type: Literal["ServiceCreated"] = "ServiceCreated"
    version: Literal[5] = 5
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


class Ingress(BaseModel):
    """One address a load balancer receives the service's traffic on."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    ip: IPv4


class LoadBalancerStatus(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    ingress: tuple[Ingress, ...] = Field(default=(), max_length=16)


class ServiceStatus(BaseModel):
    """What controllers report about a service (not what its owner asked for): for a
    LoadBalancer, the external addresses a load-balancer controller gave it."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    # A factory, not an instance: building one here would build the models at import.
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


class ServiceUpdated(EventEnvelope):
    """A live service changed in place; it carries the service in full after the change,
    where it began and its status, so a service's last event is still all there is to
    know of it.

    Version 2 added ``status`` (carried over from the event before, and cleared when the
    service stops being a LoadBalancer) and the addresses of ``ServiceCreated`` v3; a
    version-1 event is read as having no status. Version 3 added ``service.external_name``
    (``ServiceCreated`` v4); an earlier event is read as having none. Version 4 added
    named ports (``ServiceCreated`` v5).
    """

    type: Literal["ServiceUpdated"] = "ServiceUpdated"
    version: Literal[4] = 4
    service: Service
    created: Origin
    status: ServiceStatus | None = None

    @property
    def namespace(self) -> str:
        return self.service.namespace

    @property
    def name(self) -> str:
        return self.service.name


class ServiceStatusChanged(EventEnvelope):
    """A controller reported the service's status (a load balancer's external IP); the
    service itself is unchanged and carried in full, like every event that leaves it live.
    Written on top of the revision the controller saw, like any other change. Version 2
    added ``service.external_name`` (``ServiceCreated`` v4): a version-1 event has none.
    Version 3 added named ports (``ServiceCreated`` v5). (No longer written: status is a
    ``ServiceStatusSet`` on a subject of its own.)"""

    type: Literal["ServiceStatusChanged"] = "ServiceStatusChanged"
    version: Literal[3] = 3
    service: Service
    created: Origin
    status: ServiceStatus

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


Event = (
    ServiceCreated | ServiceUpdated | ServiceStatusChanged | ServiceDeleted | ServiceForceDeleted
)
# What a live service's last event is: each carries the whole service.
LiveEvent = ServiceCreated | ServiceUpdated | ServiceStatusChanged
