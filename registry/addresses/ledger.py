"""The address ledger's bad records, and the releases that repair them
(``skyctl addresses repair``).

An address subject's last record is *bad* when it says something the services do not
back: it cannot be read, it is an allocation naming a service that is gone or does not
name the address, or it is a release of an address its named service still holds. The
allocator already treats such a record as saying nothing (an address is held while a
live service names it), so a bad record blocks or grants nothing; repairing only makes
the ledger say again what the services say, so every reader of the records (the
auditor, a proxy, a person) sees the truth without asking the services:

- an address a live service holds gets an ``AddressAllocated`` naming that service again;
- any other gets an ``AddressReleased`` (naming the holder the bad record named, or
  ``REPAIR_HOLDER`` when it named none that can be read).

Each repair is appended only if the subject's last sequence is still the bad record's,
so a write that took the address in between is never written over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from events import (
    AddressAllocated,
    AddressReleased,
    Holder,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from events.subjects import address_filter, parse_address_subject
from registry.addresses.allocator import Allocator, backs, record_of
from registry.log.port import Log, WrongLastSequence
from registry.log.reader import Start, read_until_caught_up
from registry.log.stored import StoredMessage, chain_hash

__all__ = ["REPAIR_HOLDER", "BadRecord", "Repaired", "bad_records", "repair"]

# Named by a release over a record that named no readable holder.
REPAIR_HOLDER = Holder(namespace="skyflow-system", name="repair", uid="repair")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """An address subject whose last record the services do not back, and who really
    holds the address (None: it is free)."""

    message: StoredMessage
    kind: str
    address: str
    problem: str
    holder: Holder | None

    @property
    def subject(self) -> str:
        return self.message.subject

    def __str__(self) -> str:
        return f"seq {self.message.seq} {self.subject}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Repaired:
    bad: BadRecord
    action: Literal["released", "held by", "moved on"]  # moved on: written over first

    def __str__(self) -> str:
        bad = self.bad
        if self.action == "held by":
            return f"{bad}: recorded as held by {bad.holder} again"
        if self.action == "released":
            return f"{bad}: released"
        return f"{bad}: left alone (written over since it was read)"


def _problem(message: StoredMessage, services: dict[str, StoredMessage]) -> str | None:
    record = record_of(message)
    if record is None:
        return None
    if isinstance(record, str):
        return record
    service = services.get(subject_for(record.holder.namespace, record.holder.name))
    if isinstance(record, AddressAllocated):
        if backs(record, service):
            return None
        return (
            f"names {record.holder} (uid {record.holder.uid}) as holder, which is not a live "
            "service with that address"
        )
    if backs(record, service):
        return f"a release for {record.holder}, which still holds it"
    return None


async def bad_records(log: Log, allocator: Allocator) -> list[BadRecord]:
    """Every address subject whose last record the services do not back (one read of
    each subject's last record, and of the histories of the bad ones)."""
    async with log.read([address_filter()], Start("last_per_subject")) as tail:
        lasts = {m.subject: m for m in await read_until_caught_up(tail)}
    named = set()
    for message in lasts.values():
        record = record_of(message)
        if isinstance(record, AddressAllocated | AddressReleased):
            named.add(subject_for(record.holder.namespace, record.holder.name))
    services = await log.last_many(sorted(named)) if named else {}
    problems = {s: p for s, m in lasts.items() if (p := _problem(m, services)) is not None}
    holders = await allocator.holders_of({s: lasts[s] for s in problems})
    found = []
    for subject, problem in sorted(problems.items()):
        try:
            kind, address = parse_address_subject(subject)
        except ValueError:
            continue
        found.append(BadRecord(lasts[subject], kind, address, problem, holders.get(subject)))
    return found


async def repair(log: Log, bad: BadRecord, actor: str) -> Repaired:
    """Write the record that makes ``bad``'s subject say what the services say, on top of
    the bad record only."""
    last = bad.message
    record: AddressAllocated | AddressReleased
    if bad.holder is not None:
        record = AddressAllocated(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(last.data),
            kind=bad.kind,
            address=bad.address,
            holder=bad.holder,
        )
    else:
        named = record_of(last)
        holder = named.holder if isinstance(named, AddressAllocated) else REPAIR_HOLDER
        record = AddressReleased(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(last.data),
            kind=bad.kind,
            address=bad.address,
            holder=holder,
        )
    try:
        await log.append(
            bad.subject, encode(record), msg_id=record.id, expected_last_subject_seq=last.seq
        )
    except WrongLastSequence:
        return Repaired(bad, "moved on")
    return Repaired(bad, "held by" if bad.holder is not None else "released")
