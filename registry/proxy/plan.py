"""What a node forwards, planned from services and their endpoints: pure.

Every service port becomes one or more *frontends* (an address, a protocol and a port the
node takes traffic on) and each frontend goes to the ready endpoints' addresses at the
port's target port, its *backends*; a frontend with no backend rejects. The kernel
(``nftables``) and the user-space proxy (``userspace``) apply the same plan.

The log is untrusted: a writer publishing with raw nats-py can name any cluster IP or node
port, and the controller any ingress IP. So a frontend is planned only where the
registry's own ranges put it: a cluster IP inside the service CIDR, a node port inside the
node-port range on the node's addresses, an ingress IP from a controller's status, never
an address of the node itself (but for node ports), a loopback, unspecified, multicast or
link-local address, or where the NATS server listens. Two live services claiming one
frontend (possible only by writing around the allocator) get it neither: forwarding it to
either would let one team take another's traffic, so it is left alone and reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from events.service import HEADLESS, NODE_PORT_TYPES, Service, ServiceType
from registry.discovery.endpoints import EndpointAddress

__all__ = [
    "Backend",
    "Change",
    "Frontend",
    "Plan",
    "Scope",
    "ServiceKey",
    "Table",
    "service_frontends",
]

ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True, order=True)
class Frontend:
    """Where the node takes a service's traffic: an IPv4 address, protocol and port."""

    address: str
    protocol: str  # "tcp", "udp" or "sctp", as nftables names them
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True, order=True)
class Backend:
    """Where a connection goes: a ready task's address and the port's target port."""

    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


Backends = tuple[Backend, ...]  # sorted; empty: reject
Plan = dict[Frontend, Backends]


@dataclass(frozen=True)
class Scope:
    """Where this node may forward from: the registry's ranges, the node's own addresses
    (node ports listen there), and addresses no frontend may take."""

    service_network: ipaddress.IPv4Network
    first_node_port: int
    last_node_port: int
    node_addresses: tuple[str, ...] = ()
    # Addresses no cluster IP or ingress IP may be (the node's own, the NATS server's).
    reserved: frozenset[str] = frozenset()
    # (address, port) pairs nothing may take: where the NATS server listens.
    reserved_ports: frozenset[tuple[str, int]] = frozenset()

    def virtual_ip_problem(self, address: str, *, cluster_ip: bool) -> str | None:
        """Why ``address`` may not be a cluster IP (or an ingress IP), or None."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{address[:64]!r} is not an IP address"
        if not isinstance(ip, ipaddress.IPv4Address):
            return f"{address} is not IPv4"
        if ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_link_local:
            return f"{address} is a loopback, unspecified, multicast or link-local address"
        if str(ip) in self.reserved or str(ip) in self.node_addresses:
            return f"{address} is this node's or the NATS server's address"
        if cluster_ip and ip not in self.service_network:
            return f"{address} is outside the service range {self.service_network}"
        if not cluster_ip and ip in self.service_network:
            return f"{address} is inside the service range {self.service_network}"
        return None


def service_frontends(
    service: Service,
    ready: Sequence[EndpointAddress],
    scope: Scope,
    ingress: Sequence[str] = (),
) -> tuple[Plan, list[str]]:
    """The frontends ``service`` asks for, each to its backends (``ready``: the ready
    endpoints, each forwarded to on the port it serves the service port on), and why any
    it names were left out."""
    plan: Plan = {}
    problems: list[str] = []
    if service.type == ServiceType.EXTERNAL_NAME or service.cluster_ip in (None, HEADLESS):
        return plan, problems  # nothing to forward: DNS names them
    what = f"{service.namespace}/{service.name}"
    ipv4 = [a for a in ready if _is_ipv4(a.address)]
    addresses: list[str] = []
    assert service.cluster_ip is not None
    problem = scope.virtual_ip_problem(service.cluster_ip, cluster_ip=True)
    if problem is None:
        addresses.append(service.cluster_ip)
    else:
        problems.append(f"{what}: cluster IP not forwarded: {problem}")
    for ip in dict.fromkeys(ingress):
        problem = scope.virtual_ip_problem(ip, cluster_ip=False)
        if problem is None:
            addresses.append(ip)
        else:
            problems.append(f"{what}: ingress IP not forwarded: {problem}")
    for port in service.ports:
        protocol = port.protocol.value.lower()
        # Two tasks on one address serve one service on ports of their own (named ports).
        backends = tuple(
            sorted(
                {
                    Backend(a.address, target)
                    for a in ipv4
                    if (target := a.target(port)) is not None
                },
                key=lambda b: (ipaddress.IPv4Address(b.address), b.port),
            )
        )
        for address in addresses:
            plan[Frontend(address, protocol, port.port)] = backends
        if port.node_port is None or service.type not in NODE_PORT_TYPES:
            continue
        if not scope.first_node_port <= port.node_port <= scope.last_node_port:
            problems.append(
                f"{what}: node port {port.node_port} not forwarded: outside the node-port "
                f"range {scope.first_node_port}-{scope.last_node_port}"
            )
            continue
        for address in scope.node_addresses:
            if (address, port.node_port) in scope.reserved_ports:
                problems.append(
                    f"{what}: node port {port.node_port} not forwarded on {address}: "
                    "the NATS server listens there"
                )
                continue
            plan[Frontend(address, protocol, port.node_port)] = backends
    return plan, problems


def _is_ipv4(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Change:
    """One frontend whose forwarding changed: ``before``/``after`` None when absent
    (not forwarded at all), an empty tuple when it rejects."""

    frontend: Frontend
    before: Backends | None
    after: Backends | None


@dataclass
class Table:
    """The plan for every service, kept up to date one service at a time: each update
    costs what that service holds, not what the node forwards in all."""

    _by_service: dict[ServiceKey, Plan] = field(default_factory=dict)
    _owners: dict[Frontend, set[ServiceKey]] = field(default_factory=dict)

    def effective(self) -> Plan:
        """Every frontend forwarded now (one owner each), to its backends."""
        return {f: b for f in self._owners if (b := self._effective(f)) is not None}

    def conflicts(self) -> dict[Frontend, list[ServiceKey]]:
        """Frontends more than one service claims (forwarded for none of them)."""
        return {f: sorted(o) for f, o in self._owners.items() if len(o) > 1}

    def owners(self, frontend: Frontend) -> list[ServiceKey]:
        """The services that claim ``frontend`` (more than one: forwarded for none)."""
        return sorted(self._owners.get(frontend, ()))

    def update(self, key: ServiceKey, plan: Mapping[Frontend, Backends]) -> list[Change]:
        """Set what ``key`` asks for (empty: it is gone); the frontends that changed."""
        old = self._by_service.get(key, {})
        touched = set(old) | set(plan)
        before = {f: self._effective(f) for f in touched}
        for frontend in set(old) - set(plan):
            owners = self._owners[frontend]
            owners.discard(key)
            if not owners:
                del self._owners[frontend]
        for frontend in plan:
            self._owners.setdefault(frontend, set()).add(key)
        if plan:
            self._by_service[key] = dict(plan)
        else:
            self._by_service.pop(key, None)
        changes = []
        for frontend in sorted(touched):
            after = self._effective(frontend)
            if after != before[frontend]:
                changes.append(Change(frontend, before[frontend], after))
        return changes

    def replace(self, plans: Iterable[tuple[ServiceKey, Mapping[Frontend, Backends]]]) -> None:
        """Everything at once (a fresh read): the changes are whatever differs from what
        was applied, which the caller works out against the kernel or its listeners."""
        self._by_service.clear()
        self._owners.clear()
        for key, plan in plans:
            self.update(key, plan)

    def _effective(self, frontend: Frontend) -> Backends | None:
        owners = self._owners.get(frontend)
        if not owners or len(owners) > 1:
            return None
        (owner,) = owners
        return self._by_service[owner][frontend]
