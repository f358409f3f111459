"""The records that say which addresses are held, and the ranges they come from.

Each address that can be held (a cluster IP, a node port) has a subject of its own in the
service stream (``events.subjects.address_subject``). Its last record says who holds it:
an ``AddressAllocated`` names the holder, an ``AddressReleased`` (or no record) means it
is free. A record is only ever written in the same atomic batch as the service event
that takes or gives up the address, conditional on the address subject's last sequence,
so two live services never hold one address and a deleted service holds none.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.envelope import EventEnvelope
from events.names import IPV4_PATTERN, ResourceName

__all__ = [
    "DEFAULT_NODE_PORTS",
    "DEFAULT_SERVICE_CIDR",
    "AddressAllocated",
    "AddressEvent",
    "AddressKind",
    "AddressRangesSet",
    "AddressReleased",
    "Holder",
    "NodePortRange",
]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORTS = (30000, 32767)

_FROZEN = ConfigDict(
    frozen=True,
    extra="forbid",
    json_schema_serialization_defaults_required=True,
    defer_build=True,
)


class AddressKind(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"


class Holder(BaseModel):
    """The service that holds an address: its name, and its uid (the id of its
    ``ServiceCreated``), so a later service of the same name is a different holder."""

    model_config = _FROZEN

    namespace: ResourceName
    name: ResourceName
    uid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class _AddressRecord(EventEnvelope):
    kind: AddressKind
    address: str = Field(min_length=1, max_length=45)
    holder: Holder

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        import re

        if self.kind == AddressKind.CLUSTER_IP:
            if not re.fullmatch(IPV4_PATTERN, self.address):
                raise ValueError(f"{self.address!r} is not an IPv4 address")
        elif not (self.address.isascii() and self.address.isdigit()) or not (
            1 <= int(self.address) <= 65535 and str(int(self.address)) == self.address
        ):
            raise ValueError(f"{self.address!r} is not a port number")
        return self


class AddressAllocated(_AddressRecord):
    """An address was taken by a service (in the batch that created or changed it)."""

    type: Literal["AddressAllocated"] = "AddressAllocated"
    version: Literal[1] = 1


class AddressReleased(_AddressRecord):
    """A service gave an address up (in the batch that deleted or changed it): it is free."""

    type: Literal["AddressReleased"] = "AddressReleased"
    version: Literal[1] = 1


class NodePortRange(BaseModel):
    model_config = _FROZEN

    first: int = Field(ge=1, le=65535, strict=True)
    last: int = Field(ge=1, le=65535, strict=True)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first > self.last:
            raise ValueError(f"{self.first}-{self.last} is empty (first after last)")
        return self

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


class AddressRangesSet(EventEnvelope):
    """Where new addresses come from, set by ``skyctl init``; every writer reads the last
    one. Changing the ranges never moves or frees an address already held: each stays with
    its service until that service gives it up."""

    type: Literal["AddressRangesSet"] = "AddressRangesSet"
    version: Literal[1] = 1
    service_cidr: str = Field(min_length=9, max_length=18)
    node_ports: NodePortRange

    @model_validator(mode="after")
    def _valid_cidr(self) -> Self:
        import ipaddress

        try:
            network = ipaddress.IPv4Network(self.service_cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"service_cidr {self.service_cidr!r}: {exc}") from None
        if str(network) != self.service_cidr:
            raise ValueError(f"service_cidr {self.service_cidr!r} is not canonical")
        return self


AddressEvent = AddressAllocated | AddressReleased
