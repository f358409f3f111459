"""Choosing addresses, and reading from the log whether they are free.

An address is free when its subject has no record or its last record is an
``AddressReleased``. The allocator only reads: it returns, for each write, the service
with every address filled in and, for each address the write takes or gives up, the
subject's last message, so the write can be made conditional on it. The server then
decides (invariant 12): if any address subject moved since, the whole atomic batch is
refused, and the writer reads and chooses again. Random choice keeps racing writers
apart in a large range; a small or nearly full range is scanned.

Every writer may publish address records (they are written in batches with its own
services), so a record alone is not trusted: an address is held while a live service
names it, and the holder is found through the records (each genuine allocation is one,
in the batch of the service that took the address) but believed only as far as that
service's own subject agrees, which only its namespace's writers can write. A forged
release of another namespace's address therefore frees nothing, a forged allocation
over it takes nothing (the real holder's allocation under it is still found), and a
record that cannot be read, or names a holder no live service backs, neither grants nor
blocks: the next write that takes the address writes over it, conditional on its
sequence (``registry.addresses.ledger`` lists such records, ``skyctl addresses repair``
writes releases over them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from events import (
    RANGES_SUBJECT,
    AddressAllocated,
    AddressKind,
    AddressReleased,
    DecodeError,
    Holder,
    Service,
    decode_address,
    decode_ranges,
    subject_for,
)
from events.subjects import address_filter, parse_address_subject
from registry.addresses.holdings import (
    Address,
    Ranges,
    Slot,
    fill,
    held_by,
    live_service,
    open_slots,
)
from registry.addresses.quotas import UsageClaim, check_quotas
from registry.errors import AddressTaken, InvalidInput, RangeExhausted, ServiceError
from registry.log.entry import Entry, read_entry
from registry.log.port import Log
from registry.log.reader import Start, read_until_caught_up
from registry.log.stored import StoredMessage

__all__ = ["Allocation", "Allocator", "Claim", "Request", "backs", "record_of"]

# Random picks per open slot and round, and rounds before scanning the whole range.
CANDIDATES = 3
ROUNDS = 3
# A range up to this size is scanned by listing it; a larger one is never full in
# practice, and is retried at random instead.
LISTABLE = 65536
# How long the ranges read from the log are trusted before reading them again.
RANGES_TTL = 10.0
# Up to this many address subjects have their histories read by name; more are read
# through their kind's wildcard (one filter instead of thousands).
HISTORY_FILTERS = 64


@dataclass(frozen=True, slots=True)
class Claim:
    """An address a write takes or gives up, its subject's last message when read, and
    (when given up) who the log says holds it."""

    address: Address
    last: StoredMessage | None
    holder: Holder | None = None

    @property
    def expected_seq(self) -> int:
        return self.last.seq if self.last is not None else 0


@dataclass(frozen=True, slots=True)
class Request:
    """One write's addresses to settle: the service as stored before (None: not live) and
    as it will be (None: deleted), and whose it is (its uid). ``by_name``: what it held
    is unknown (a forced delete over an unreadable event), so everything held under its
    namespace and name is given up."""

    namespace: str
    name: str
    uid: str
    before: Service | None
    after: Service | None
    by_name: bool = False


@dataclass(slots=True)
class Allocation:
    """What a write does to addresses: the service with every address filled in, the
    addresses it takes and those it gives up."""

    service: Service | None
    uid: str  # of the service that takes the addresses
    take: list[Claim] = field(default_factory=list)
    give_up: list[Claim] = field(default_factory=list)
    usage: UsageClaim | None = None  # the usage record of a namespace with a quota


def record_of(message: StoredMessage | None) -> AddressAllocated | AddressReleased | str | None:
    """An address subject's last record: the record, None when there is none, or a
    description when it cannot be read (it neither grants nor blocks the address)."""
    if message is None:
        return None
    try:
        record = decode_address(message.data)
    except DecodeError as exc:
        return f"an unreadable record (seq {message.seq}: {exc})"
    try:
        kind, value = parse_address_subject(message.subject)
    except ValueError:
        return f"a record under a wrong subject (seq {message.seq})"
    if (record.kind, record.address) != (kind, value):
        return f"a record for another address (seq {message.seq})"
    return record


def backs(record: AddressAllocated | AddressReleased, last: StoredMessage | None) -> bool:
    """Whether the service ``record`` names holds its address, by that service's own last
    event: that service (same uid) is live and names the address. A service whose last
    event cannot be read backs nothing: a record alone never grants nor blocks."""
    if last is None:
        return False
    entry = read_entry(last)
    if not isinstance(entry, Entry):
        return False
    live = live_service(entry.event)
    if live is None:
        return False
    uid, service = live
    if uid != record.holder.uid:
        return False
    return Address(record.kind, record.address) in held_by(service)


class Allocator:
    """Reads ranges and address records for the writes of one registry."""

    def __init__(self, log: Log, *, rng: random.Random | None = None) -> None:
        self.log = log
        self.rng = rng or random.SystemRandom()
        self._ranges: tuple[float, Ranges] | None = None

    async def ranges(self) -> Ranges:
        """The ranges the last ``AddressRangesSet`` names, else the defaults."""
        now = asyncio.get_running_loop().time()
        if self._ranges is not None and now - self._ranges[0] < RANGES_TTL:
            return self._ranges[1]
        message = await self.log.last(RANGES_SUBJECT)
        ranges = Ranges.default()
        if message is not None:
            # An unreadable setting is no setting: the defaults hold.
            with contextlib.suppress(DecodeError):
                ranges = Ranges.of(decode_ranges(message.data))
        self._ranges = (now, ranges)
        return ranges

    async def holders(self, lasts: dict[str, StoredMessage]) -> dict[str, str | None]:
        """Who holds the address of each subject in ``lasts`` (its last messages): the
        live service (``ns/name``) that names it, or None when it is free
        (``holders_of``)."""
        found = await self.holders_of(lasts)
        return {s: str(h) if h is not None else None for s, h in found.items()}

    async def holders_of(self, lasts: dict[str, StoredMessage]) -> dict[str, Holder | None]:
        """Who holds the address of each subject in ``lasts`` (its last messages): the
        live service that names it, or None when it is free.

        An address is held while a live service names it, whatever record lies on top:
        the last record is the quick answer when the service it names backs it; when it
        does not (a release, a forged or unreadable record), every service the subject's
        history ever named as holder is asked, since a forged record may sit over the
        real holder's allocation. A record no live service backs neither grants nor
        blocks: the write that takes the address goes over it (on its sequence)."""
        records = {subject: record_of(message) for subject, message in lasts.items()}
        named = {
            subject_for(r.holder.namespace, r.holder.name)
            for r in records.values()
            if isinstance(r, AddressAllocated)
        }
        services = await self.log.last_many(sorted(named)) if named else {}
        result: dict[str, Holder | None] = {}
        doubtful: list[str] = []
        for subject, record in records.items():
            result[subject] = None
            if isinstance(record, AddressAllocated) and backs(
                record, services.get(subject_for(record.holder.namespace, record.holder.name))
            ):
                result[subject] = record.holder
            elif record is not None:
                doubtful.append(subject)
        if doubtful:
            await self._history_holders(doubtful, services, result)
        return result

    async def _history_holders(
        self,
        subjects: list[str],
        services: dict[str, StoredMessage],
        result: dict[str, Holder | None],
    ) -> None:
        """Fill ``result`` for ``subjects`` from every holder their histories name (one
        ordered read; a long list of subjects is read through its kind's wildcard)."""
        wanted = set(subjects)
        filters = sorted(wanted)
        if len(filters) > HISTORY_FILTERS:
            kinds = {parse_address_subject(s)[0] for s in filters}
            filters = sorted(address_filter(kind) for kind in kinds)
        async with self.log.read(filters, Start("all")) as tail:
            messages = await read_until_caught_up(tail)
        claims: dict[str, list[AddressAllocated]] = {}
        for message in messages:
            if message.subject in wanted:
                record = record_of(message)
                if isinstance(record, AddressAllocated):
                    claims.setdefault(message.subject, []).append(record)
        more = {
            subject_for(r.holder.namespace, r.holder.name)
            for records in claims.values()
            for r in records
        } - set(services)
        if more:
            services.update(await self.log.last_many(sorted(more)))
        for subject, records in claims.items():
            # The newest first: the holder after the last genuine allocation.
            for record in reversed(records):
                service = services.get(subject_for(record.holder.namespace, record.holder.name))
                if backs(record, service):
                    result[subject] = record.holder
                    break

    def forget_ranges(self) -> None:
        """Read the ranges again on next use (they were just changed)."""
        self._ranges = None

    async def settle(self, request: Request) -> Allocation:
        """``settle_many`` for one write, raising its refusal."""
        (outcome,) = await self.settle_many([request])
        if isinstance(outcome, ServiceError):
            raise outcome
        return outcome

    async def settle_many(self, requests: Sequence[Request]) -> list[Allocation | ServiceError]:
        """For each write: the addresses it takes (asked for, or chosen) and gives up, each
        with its subject's last message; or why it cannot have them (``AddressTaken``,
        ``RangeExhausted``). An asked-for address outside its range is bad input and
        raises ``InvalidInput`` before anything is read."""
        ranges: Ranges | None = None
        asked: list[list[Address]] = []
        giving: list[list[Address]] = []
        for request in requests:
            new = sorted(held_by(request.after) - held_by(request.before))
            asked.append(new)
            giving.append(sorted(held_by(request.before) - held_by(request.after)))
            if new:
                ranges = ranges or await self.ranges()
                for address in new:
                    if not ranges.contains(address):
                        raise InvalidInput(
                            address.what,
                            address.value,
                            f"is outside the range {ranges.describe(address.kind)}",
                        )
        refused, usage = await check_quotas(
            self.log, [(r.namespace, r.name, r.before, r.after) for r in requests]
        )
        subjects = [a.subject for group in (*asked, *giving) for a in group]
        known = await self.log.last_many(subjects) if subjects else {}
        if any(r.by_name for r in requests):
            known.update(await self._held_by_names(requests, giving))
        asked_subjects = {a.subject for group in asked for a in group}
        holders = await self.holders({s: m for s, m in known.items() if s in asked_subjects})
        outcomes: list[Allocation | ServiceError] = []
        claimed: dict[Address, str] = {}  # taken within this call, by whom
        for index, (request, new, old) in enumerate(zip(requests, asked, giving, strict=True)):
            if index in refused:
                outcomes.append(refused[index])
                continue
            outcome = self._asked(request, new, old, known, holders, claimed)
            if isinstance(outcome, Allocation):
                outcome.usage = usage.get(index)
            outcomes.append(outcome)
        await self._choose(requests, outcomes, claimed, ranges)
        return outcomes

    def _asked(
        self,
        request: Request,
        new: list[Address],
        old: list[Address],
        known: dict[str, StoredMessage],
        holders: dict[str, str | None],
        claimed: dict[Address, str],
    ) -> Allocation | ServiceError:
        key = f"{request.namespace}/{request.name}"
        allocation = Allocation(request.after, request.uid)
        for address in new:
            holder = holders.get(address.subject)
            if address in claimed:
                holder = f"{claimed[address]} (in the same request)"
            if holder is not None:
                return AddressTaken(
                    request.namespace, request.name, address.what, address.value, holder
                )
            allocation.take.append(Claim(address, known.get(address.subject)))
        for address in new:
            claimed[address] = key
        key_of = (request.namespace, request.name)
        for address in old:
            last = known.get(address.subject)
            record = record_of(last)
            # Only what the log says is this service's is given up; anything else (a
            # service from before addresses, a record written around the registry) is not
            # this write's to free.
            if isinstance(record, AddressAllocated) and (
                record.holder.uid == request.uid
                or (request.by_name and (record.holder.namespace, record.holder.name) == key_of)
            ):
                allocation.give_up.append(Claim(address, last, record.holder))
        return allocation

    async def _held_by_names(
        self, requests: Sequence[Request], giving: list[list[Address]]
    ) -> dict[str, StoredMessage]:
        """For ``by_name`` requests, the addresses held under their names (one scan of
        every address subject), added to what each gives up; their last messages."""
        async with self.log.read([address_filter()], Start("last_per_subject")) as tail:
            messages = await read_until_caught_up(tail)
        wanted = {(r.namespace, r.name): i for i, r in enumerate(requests) if r.by_name}
        found: dict[str, StoredMessage] = {}
        for message in messages:
            record = record_of(message)
            if isinstance(record, AddressAllocated):
                index = wanted.get((record.holder.namespace, record.holder.name))
                if index is not None:
                    giving[index].append(Address(record.kind, record.address))
                    found[message.subject] = message
        return found

    async def _choose(
        self,
        requests: Sequence[Request],
        outcomes: list[Allocation | ServiceError],
        claimed: dict[Address, str],
        ranges: Ranges | None,
    ) -> None:
        """Fill every open slot of every allocation still standing, in place."""
        slots: list[tuple[int, Slot, AddressKind]] = [
            (index, slot, kind)
            for index, outcome in enumerate(outcomes)
            if isinstance(outcome, Allocation) and outcome.service is not None
            for slot, kind in open_slots(outcome.service)
        ]
        if not slots:
            return
        ranges = ranges or await self.ranges()
        chosen: dict[int, dict[Slot, Claim]] = {}
        pending = slots
        for _ in range(ROUNDS):
            pending = await self._random_round(pending, chosen, claimed, ranges, requests)
            if not pending:
                break
        for kind in sorted({kind for _, _, kind in pending}):
            pending = await self._scan(kind, pending, chosen, claimed, ranges, requests)
        for index, _, kind in pending:
            request = requests[index]
            outcomes[index] = RangeExhausted(
                request.namespace,
                request.name,
                Address(kind, "").what,
                ranges.describe(kind),
            )
            chosen.pop(index, None)
        for index, picks in chosen.items():
            outcome = outcomes[index]
            if isinstance(outcome, Allocation) and outcome.service is not None:
                outcome.service = fill(outcome.service, {s: c.address for s, c in picks.items()})
                outcome.take.extend(picks.values())

    async def _random_round(
        self,
        pending: list[tuple[int, Slot, AddressKind]],
        chosen: dict[int, dict[Slot, Claim]],
        claimed: dict[Address, str],
        ranges: Ranges,
        requests: Sequence[Request],
    ) -> list[tuple[int, Slot, AddressKind]]:
        candidates: list[list[Address]] = []
        seen: set[Address] = set(claimed)
        for _, _, kind in pending:
            picks: list[Address] = []
            for _ in range(min(CANDIDATES, ranges.size(kind))):
                address = ranges.random(kind, self.rng)
                if address not in seen:
                    seen.add(address)
                    picks.append(address)
            candidates.append(picks)
        known = await self.log.last_many([a.subject for group in candidates for a in group])
        holders = await self.holders(known)
        left = []
        for (index, slot, kind), picks in zip(pending, candidates, strict=True):
            free = next(
                (a for a in picks if a not in claimed and holders.get(a.subject) is None),
                None,
            )
            if free is None:
                left.append((index, slot, kind))
                continue
            request = requests[index]
            claimed[free] = f"{request.namespace}/{request.name}"
            chosen.setdefault(index, {})[slot] = Claim(free, known.get(free.subject))
        return left

    async def _scan(
        self,
        kind: AddressKind,
        pending: list[tuple[int, Slot, AddressKind]],
        chosen: dict[int, dict[Slot, Claim]],
        claimed: dict[Address, str],
        ranges: Ranges,
        requests: Sequence[Request],
    ) -> list[tuple[int, Slot, AddressKind]]:
        """Read the last record of every address of ``kind`` and hand out free ones."""
        async with self.log.read([address_filter(kind)], Start("last_per_subject")) as tail:
            messages = await read_until_caught_up(tail)
        lasts = {m.subject: m for m in messages}
        holders = await self.holders(lasts)
        if ranges.size(kind) <= LISTABLE:
            free = [
                a for a in ranges.every(kind) if a not in claimed and holders.get(a.subject) is None
            ]
            self.rng.shuffle(free)
        else:
            free = []  # a range this large is not full: another random round will do
        left = []
        for index, slot, this_kind in pending:
            if this_kind != kind:
                left.append((index, slot, this_kind))
                continue
            if not free:
                if ranges.size(kind) > LISTABLE:
                    more = await self._random_round(
                        [(index, slot, kind)], chosen, claimed, ranges, requests
                    )
                    left.extend(more)
                else:
                    left.append((index, slot, kind))
                continue
            address = free.pop()
            request = requests[index]
            claimed[address] = f"{request.namespace}/{request.name}"
            chosen.setdefault(index, {})[slot] = Claim(address, lasts.get(address.subject))
        return left
