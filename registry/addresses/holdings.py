"""Which addresses a service holds, which it must be given, and which it gives up: pure.

A stored service holds its cluster IP (unless headless or an ExternalName) and the node
port of each port (NodePort and LoadBalancer services). A change keeps what the registry
allocated: the cluster IP never changes while the service lives, and a port that stays
keeps its node port unless the owner asks for another. What a write takes and gives up is
the difference between the addresses held before and after it; the allocator
(``registry.addresses.allocator``) fills in the ones left to choose and checks the asked-for ones
against the log.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import assert_never

from events import (
    HEADLESS,
    AddressKind,
    AddressRangesSet,
    Event,
    Port,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatusChanged,
    ServiceType,
    ServiceUpdated,
    address_subject,
)
from events.address import DEFAULT_NODE_PORTS, DEFAULT_SERVICE_CIDR
from events.service import NODE_PORT_TYPES
from registry.errors import InvalidInput

__all__ = [
    "Address",
    "Ranges",
    "Slot",
    "carried_over",
    "changes",
    "fill",
    "held_by",
    "live_service",
    "open_slots",
]

# Where an address goes in a service: its cluster IP (None) or the node port of its
# port at this index.
Slot = int | None


@dataclass(frozen=True, slots=True, order=True)
class Address:
    kind: AddressKind
    value: str

    @property
    def subject(self) -> str:
        return address_subject(self.kind, self.value)

    @property
    def what(self) -> str:
        """As a message names it: "cluster IP", "node port"."""
        return "cluster IP" if self.kind == AddressKind.CLUSTER_IP else "node port"

    def __str__(self) -> str:
        return f"{self.what} {self.value}"


@dataclass(frozen=True, slots=True)
class Ranges:
    """Where new addresses come from: the service CIDR and the node-port range."""

    network: ipaddress.IPv4Network
    first_port: int
    last_port: int

    @classmethod
    def default(cls) -> Ranges:
        return cls(ipaddress.IPv4Network(DEFAULT_SERVICE_CIDR), *DEFAULT_NODE_PORTS)

    @classmethod
    def of(cls, event: AddressRangesSet) -> Ranges:
        ports = event.node_ports
        return cls(ipaddress.IPv4Network(event.service_cidr), ports.first, ports.last)

    def describe(self, kind: AddressKind) -> str:
        if kind == AddressKind.CLUSTER_IP:
            return str(self.network)
        return f"{self.first_port}-{self.last_port}"

    def size(self, kind: AddressKind) -> int:
        if kind == AddressKind.NODE_PORT:
            return self.last_port - self.first_port + 1
        first, last = self._host_bounds()
        return last - first + 1

    def contains(self, address: Address) -> bool:
        if address.kind == AddressKind.NODE_PORT:
            return self.first_port <= int(address.value) <= self.last_port
        first, last = self._host_bounds()
        return first <= int(ipaddress.IPv4Address(address.value)) <= last

    def random(self, kind: AddressKind, rng: random.Random) -> Address:
        if kind == AddressKind.NODE_PORT:
            return Address(kind, str(rng.randint(self.first_port, self.last_port)))
        first, last = self._host_bounds()
        return Address(kind, str(ipaddress.IPv4Address(rng.randint(first, last))))

    def every(self, kind: AddressKind) -> Iterator[Address]:
        """Every address of the range, in order (only for a range small enough to list)."""
        if kind == AddressKind.NODE_PORT:
            for port in range(self.first_port, self.last_port + 1):
                yield Address(kind, str(port))
            return
        first, last = self._host_bounds()
        for value in range(first, last + 1):
            yield Address(kind, str(ipaddress.IPv4Address(value)))

    def _host_bounds(self) -> tuple[int, int]:
        """The usable addresses: not the network's own address nor its broadcast (a /31 or
        /32 has neither)."""
        first, last = int(self.network.network_address), int(self.network.broadcast_address)
        return (first + 1, last - 1) if self.network.prefixlen < 31 else (first, last)


def live_service(event: Event) -> tuple[str, Service] | None:
    """The uid and service a service subject's last event leaves live; None: deleted."""
    match event:
        case ServiceCreated():
            return event.id, event.service
        case ServiceUpdated() | ServiceStatusChanged():
            return event.created.id, event.service
        case ServiceDeleted() | ServiceForceDeleted():
            return None
        case _:
            assert_never(event)


def held_by(service: Service | None) -> set[Address]:
    """The addresses a stored service holds."""
    if service is None:
        return set()
    held = {
        Address(AddressKind.NODE_PORT, str(port.node_port))
        for port in service.ports
        if port.node_port is not None
    }
    if service.cluster_ip is not None and service.cluster_ip != HEADLESS:
        held.add(Address(AddressKind.CLUSTER_IP, service.cluster_ip))
    return held


def carried_over(current: Service | None, desired: Service) -> Service:
    """``desired`` with what ``current`` was allocated kept where the owner left it open:
    its cluster IP (refused if asked to change: it is immutable while the service lives)
    and, port by port, the node port of a port that stays a node port."""
    if current is None:
        return desired
    update: dict[str, object] = {}
    if desired.type != ServiceType.EXTERNAL_NAME and current.cluster_ip is not None:
        if desired.cluster_ip is None:
            # Headless stays headless; an address stays (unless the new type holds none).
            if current.cluster_ip != HEADLESS or desired.type == ServiceType.CLUSTER_IP:
                update["cluster_ip"] = current.cluster_ip
        elif desired.cluster_ip != current.cluster_ip:
            raise InvalidInput(
                "spec.clusterIP",
                desired.cluster_ip,
                f"is immutable: {desired.namespace}/{desired.name} has {current.cluster_ip} "
                "(delete and re-create the service to change it)",
            )
    if desired.type in NODE_PORT_TYPES and current.type in NODE_PORT_TYPES:
        before = {(p.port, p.protocol): p.node_port for p in current.ports}
        ports = tuple(
            port.model_copy(update={"node_port": before.get((port.port, port.protocol))})
            if port.node_port is None and before.get((port.port, port.protocol)) is not None
            else port
            for port in desired.ports
        )
        taken = [p.node_port for p in ports if p.node_port is not None]
        if len(set(taken)) != len(taken):
            # The owner asked one port for a node port another port keeps: theirs wins,
            # and the other port gets a new one.
            asked = {p.node_port for p in desired.ports if p.node_port is not None}
            ports = tuple(
                p.model_copy(update={"node_port": None})
                if p.node_port in asked and p not in desired.ports
                else p
                for p in ports
            )
        update["ports"] = ports
    return desired.model_copy(update=update) if update else desired


def open_slots(service: Service) -> list[tuple[Slot, AddressKind]]:
    """What the registry must still choose for ``service``: a cluster IP for one without
    (not an ExternalName), a node port for each port of a NodePort/LoadBalancer without."""
    slots: list[tuple[Slot, AddressKind]] = []
    if service.cluster_ip is None and service.type != ServiceType.EXTERNAL_NAME:
        slots.append((None, AddressKind.CLUSTER_IP))
    if service.type in NODE_PORT_TYPES:
        slots += [
            (index, AddressKind.NODE_PORT)
            for index, port in enumerate(service.ports)
            if port.node_port is None
        ]
    return slots


def fill(service: Service, chosen: dict[Slot, Address]) -> Service:
    """``service`` with the chosen addresses in their slots."""
    if not chosen:
        return service
    update: dict[str, object] = {}
    if None in chosen:
        update["cluster_ip"] = chosen[None].value
    ports: list[Port] = list(service.ports)
    for slot, address in chosen.items():
        if slot is not None:
            ports[slot] = ports[slot].model_copy(update={"node_port": int(address.value)})
    update["ports"] = tuple(ports)
    return service.model_copy(update=update)


def changes(before: Service | None, after: Service | None) -> tuple[list[Address], list[Address]]:
    """What a write from ``before`` to ``after`` takes and gives up, each in order."""
    had, has = held_by(before), held_by(after)
    return sorted(has - had), sorted(had - has)
