"""A service's endpoints: the live tasks its selector picks, as addresses and ports.

Pure: the matching is Kubernetes' (every key of the selector equal on the task; an empty
selector picks nothing, as a Service without a selector gets no endpoints), each task
becomes ``address:targetPort`` for each of the service's ports, addresses are grouped by
cluster, and ready and not-ready are kept apart (EndpointSlice's ``ready``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from events import Port, Service

__all__ = [
    "Endpoint",
    "EndpointAddress",
    "Endpoints",
    "Selectable",
    "Subset",
    "endpoints_among",
    "endpoints_for",
    "host_port",
    "index_label",
    "selects",
]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a service with ``selector`` picks a task with ``labels``."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def index_label(selector: Mapping[str, str]) -> tuple[str, str] | None:
    """The one label a service's tasks are read by, on the server: the selector's first
    in key order (the rest are matched here). None for an empty selector."""
    if not selector:
        return None
    key = min(selector)
    return key, selector[key]


def host_port(address: str, port: int | None) -> str:
    """``10.0.0.1:8080``, ``[fd00::1]:8080``; the bare address when there is no port."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True, slots=True)
class EndpointAddress:
    """One task a service picks: ``ports`` are its named ports (a service port whose
    ``targetPort`` is a name is served there); ``draining``, that it is leaving on
    purpose (not ready, listed as terminating)."""

    address: str
    task: str
    cluster: str | None
    ready: bool
    ports: Mapping[str, int] = field(default_factory=dict, compare=True, hash=False)
    draining: bool = False

    def target(self, port: Port) -> int | None:
        """Where ``port``'s traffic goes on this task (None: it has no port of that name)."""
        return port.target_on(self.ports)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to send traffic for one service port: a task's address and target port."""

    address: str
    port: int | None  # the target port; None for a service without ports
    protocol: str
    task: str
    cluster: str | None
    ready: bool

    def __str__(self) -> str:
        return host_port(self.address, self.port)


@dataclass(frozen=True, slots=True)
class Subset:
    """Addresses of one cluster served on the same ports (Kubernetes' Endpoints subset),
    ready and not apart. ``targets`` are the ports they serve the service's ports on, in
    the service's order (None: they have no port of that name)."""

    cluster: str | None
    ready: tuple[EndpointAddress, ...]
    not_ready: tuple[EndpointAddress, ...]
    targets: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class Endpoints:
    """A service's endpoints at one moment. Equal values mean nothing a client routes by
    changed (heartbeat times are not part of it)."""

    namespace: str
    name: str
    selector: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    addresses: tuple[EndpointAddress, ...] = ()  # by cluster, then address

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def ready(self) -> int:
        return sum(1 for a in self.addresses if a.ready)

    @property
    def total(self) -> int:
        return len(self.addresses)

    @property
    def status(self) -> str:
        """``ready/total``, or ``<none>`` for a service without a selector."""
        return f"{self.ready}/{self.total}" if self.selector else "<none>"

    def endpoints(self, port: int | None = None, *, ready: bool | None = True) -> list[Endpoint]:
        """One per address and service port (only the service port ``port`` if given);
        only ready ones by default, only not-ready with ``ready=False``, all with None."""
        chosen = [a for a in self.addresses if ready is None or a.ready is ready]
        ports = [p for p in self.ports if port is None or p.port == port]
        if not self.ports and port is None:
            return [Endpoint(a.address, None, "TCP", a.task, a.cluster, a.ready) for a in chosen]
        return [
            Endpoint(a.address, target, p.protocol.value, a.task, a.cluster, a.ready)
            for a in chosen
            for p in ports
            if (target := a.target(p)) is not None
        ]

    def targets(self, address: EndpointAddress) -> tuple[int | None, ...]:
        """The ports ``address`` serves the service's ports on, in the service's order."""
        return tuple(address.target(p) for p in self.ports)

    def subsets(self) -> list[Subset]:
        """The addresses grouped by cluster (clusterless first), then by the ports they
        serve on (tasks with named ports of their own), as Kubernetes groups subsets."""
        result = []
        for cluster, members in groupby(self.addresses, key=lambda a: a.cluster):
            by_targets: dict[tuple[int | None, ...], list[EndpointAddress]] = {}
            for address in members:
                by_targets.setdefault(self.targets(address), []).append(address)
            for targets, addresses in by_targets.items():
                result.append(
                    Subset(
                        cluster,
                        tuple(a for a in addresses if a.ready),
                        tuple(a for a in addresses if not a.ready),
                        targets,
                    )
                )
        return result


class Selectable(Protocol):
    """A task as endpoints need it: a live one (``LiveTask``) or one the membership
    history says was live (``events.task.Task``)."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def address(self) -> str: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def ready(self) -> bool: ...
    @property
    def ports(self) -> Mapping[str, int]: ...
    @property
    def draining(self) -> bool: ...


def endpoints_for(service: Service, tasks: Iterable[Selectable]) -> Endpoints:
    """The endpoints of ``service`` among ``tasks`` (any tasks: those of other namespaces,
    or that its selector does not pick, are left out)."""
    empty = Endpoints(service.namespace, service.name, dict(service.selector), service.ports)
    return endpoints_among(empty, tasks)


def endpoints_among(service: Endpoints, tasks: Iterable[Selectable]) -> Endpoints:
    """``service``'s endpoints (its namespace, selector and ports) among other ``tasks``:
    those another site last reported, for one (``registry.discovery.crosssite``)."""
    chosen = [
        EndpointAddress(t.address, t.name, t.cluster, t.ready, t.ports, t.draining)
        for t in tasks
        if t.namespace == service.namespace and selects(service.selector, t.labels)
    ]
    chosen.sort(key=_order)
    return dataclasses.replace(service, addresses=tuple(chosen))


def _order(address: EndpointAddress) -> tuple[bool, str, int, int, str]:
    """Clusterless first, then by cluster; addresses in numeric order (10.0.0.2 before
    10.0.0.10), IPv4 before IPv6."""
    ip = ipaddress.ip_address(address.address)
    return (address.cluster is not None, address.cluster or "", ip.version, int(ip), address.task)
