"""One write as the messages of one atomic batch: the service event, then a record for
each address it takes or gives up.

The decision (``registry.services.decisions``) says what happens to the service; this module says
what that does to addresses and turns both into messages, each conditional on its own
subject's last sequence. Single writes (``registry.current.write``) and bulk writes
(``registry.services.bulk``) compose their batches here, so a service and its addresses are
written the same way whatever the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from events import (
    AddressAllocated,
    AddressReleased,
    Event,
    Holder,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatusChanged,
    ServiceUpdated,
    encode,
    new_event_id,
    subject_for,
)
from events.quota import QuotaUsage
from events.stream import MAX_EVENT_BYTES
from events.subjects import usage_subject
from registry.addresses.allocator import Allocation, Claim, Request
from registry.addresses.quotas import UsageClaim
from registry.errors import InvalidInput
from registry.log.port import ConditionalMessage
from registry.log.stored import chain_hash
from registry.services.decisions import Current

__all__ = ["Prepared", "Signing", "compose", "request_for"]

E = TypeVar("E", bound=Event)
Signing = Callable[[str, bytes], Mapping[str, str]]  # (subject, event bytes) -> headers


@dataclass(frozen=True, slots=True)
class Prepared(Generic[E]):
    """A write ready to send: the service event as written (addresses filled in), its
    bytes and headers, and every message of its batch (the service event first)."""

    event: E
    data: bytes
    headers: Mapping[str, str]
    messages: list[ConditionalMessage]


def request_for(current: Current, event: Event) -> Request | None:
    """What ``event`` asks of addresses, decided on ``current``; None when it cannot
    change any (a status report keeps the service as it is)."""
    record = current.record() if current.live else None
    before = record.service if record is not None else None
    match event:
        case ServiceCreated():
            return Request(event.namespace, event.name, event.id, None, event.service)
        case ServiceUpdated():
            return Request(event.namespace, event.name, event.created.id, before, event.service)
        case ServiceStatusChanged():
            return None
        case ServiceDeleted():
            uid = record.event_id if record is not None else ""
            return Request(event.namespace, event.name, uid, before, None)
        case ServiceForceDeleted():
            # What it held is in the unreadable event: the allocator finds it by name.
            return Request(event.namespace, event.name, "", None, None, by_name=True)


def compose(
    current: Current,
    event: E,
    allocation: Allocation | None,
    *,
    sign: Signing | None = None,
) -> Prepared[E]:
    """The batch for ``event`` on ``current``, with ``allocation``'s addresses."""
    if (
        allocation is not None
        and allocation.service is not None
        and isinstance(event, ServiceCreated | ServiceUpdated)
    ):
        event = event.model_copy(update={"service": allocation.service})  # type: ignore[assignment]
    subject = subject_for(event.namespace, event.name)
    data = encode(event)
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidInput(
            "service",
            f"{event.namespace}/{event.name}",
            f"its event would be {len(data)} bytes; the registry stores at most "
            f"{MAX_EVENT_BYTES} (fewer or shorter labels and ports)",
        )
    headers = sign(subject, data) if sign is not None else {}
    messages = [ConditionalMessage(subject, data, event.id, current.expected_seq, headers)]
    if allocation is not None:
        # Built only when needed: a forced delete knows no uid, only the holders its
        # records name (each release carries the holder of the record it ends).
        def holder() -> Holder:
            return Holder(namespace=event.namespace, name=event.name, uid=allocation.uid)

        for claim in allocation.take:
            messages.append(_record(AddressAllocated, claim, event, holder(), sign))
        for claim in allocation.give_up:
            released = claim.holder or holder()
            messages.append(_record(AddressReleased, claim, event, released, sign))
        if allocation.usage is not None:
            messages.append(_usage(allocation.usage, event, sign))
    return Prepared(event, data, headers, messages)


def _usage(claim: UsageClaim, event: Event, sign: Signing | None) -> ConditionalMessage:
    """The namespace's usage record: it serializes the writes that add to a namespace
    with a quota (``registry.addresses.quotas``)."""
    used = claim.used
    record = QuotaUsage(
        id=new_event_id(),
        time=event.time,
        actor=event.actor,
        prev=chain_hash(claim.last.data) if claim.last is not None else None,
        namespace=claim.namespace,
        quota=claim.quota,
        used={
            "services": used.services,
            "services.nodeports": used.nodeports,
            "services.loadbalancers": used.loadbalancers,
        },
    )
    subject = usage_subject(claim.namespace)
    data = encode(record)
    headers = sign(subject, data) if sign is not None else {}
    return ConditionalMessage(subject, data, record.id, claim.expected_seq, headers)


def _record(
    model: type[AddressAllocated] | type[AddressReleased],
    claim: Claim,
    event: Event,
    holder: Holder,
    sign: Signing | None,
) -> ConditionalMessage:
    record = model(
        id=new_event_id(),
        time=event.time,
        actor=event.actor,
        prev=chain_hash(claim.last.data) if claim.last is not None else None,
        kind=claim.address.kind,
        address=claim.address.value,
        holder=holder,
    )
    subject = claim.address.subject
    data = encode(record)
    headers = sign(subject, data) if sign is not None else {}
    return ConditionalMessage(subject, data, record.id, claim.expected_seq, headers)
