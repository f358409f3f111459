"""Tamper evidence: every event names the hash of the one before it on its service.

The writer puts ``prev = sha256(body of the subject's previous message)`` into each
event. Walking the log and recomputing shows any message that did not come through
the registry's write path with the log as it then stood: one published straight to
the stream, one whose link was forged or left out, or history changed underneath. It
proves order and completeness of each service's chain, not who wrote it: anyone
allowed to publish can compute a hash. Who wrote it is what the signatures of
``registry.services.proof`` add: the walk checks each event's too, and a signature that does not
hold, names another actor, was made for another place in its chain (a replay) or by an
expired JWT, is a break; given the keys it trusts, an auditor also sees
every event whose actor nothing proves.

The walk covers the whole stream: services, the records of the addresses they hold, and
the address ranges each form chains of their own. At its end the ``AddressLedger`` checks
invariant 12 against the log: every address a live service names is held by that service
in its address subject, and every address held there belongs to a live service that
names it; so no address is held twice, and none by a deleted service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from events import AddressAllocated, AddressReleased, Holder
from events.subjects import ALL_SUBJECTS
from events.subjects import PREFIX as SERVICE_PREFIX
from registry.addresses.holdings import Address, held_by
from registry.log.entry import Entry, RecordEntry, Skipped, StoredMessage, read_any
from registry.log.port import Log
from registry.log.reader import CAUGHT_UP, Start
from registry.services.decisions import chain_hash
from registry.services.projection import Projection
from registry.services.proof import Proof, Trust, placed, prove

__all__ = ["AddressLedger", "Break", "ChainChecker", "Unproven", "verify"]


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    subject: str
    problem: str

    def __str__(self) -> str:
        return f"seq {self.seq} {self.subject}: {self.problem}"


class ChainChecker:
    """Checks messages one at a time, in stream order; pure, so testable without a server."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, str]] = {}  # subject -> (seq, hash of its body)
        self.checked = 0

    def check(
        self, message: StoredMessage, entry: Entry | RecordEntry | Skipped | None = None
    ) -> Break | None:
        self.checked += 1
        previous = self._last.get(message.subject)
        self._last[message.subject] = (message.seq, chain_hash(message.data))
        entry = entry or read_any(message)
        if isinstance(entry, Skipped):
            return Break(message.seq, message.subject, f"unreadable: {entry.reason}")
        have = entry.event.prev
        if previous is None:
            if have is not None:
                return Break(
                    message.seq,
                    message.subject,
                    f"first event of its subject, but links to {have[:12]}…",
                )
            return None
        prev_seq, want = previous
        if have is None:
            return Break(
                message.seq,
                message.subject,
                f"no link; expected {want[:12]}… (hash of seq {prev_seq})",
            )
        if have != want:
            return Break(
                message.seq,
                message.subject,
                f"links to {have[:12]}…, expected {want[:12]}… (hash of seq {prev_seq})",
            )
        return None

    def last(self, subject: str) -> tuple[int, str] | None:
        """The sequence and hash of the last message checked on ``subject``."""
        return self._last.get(subject)

    def check_all(self, messages: Iterable[StoredMessage]) -> list[Break]:
        return [b for b in (self.check(m) for m in messages) if b is not None]

    @property
    def chains(self) -> int:
        return len(self._last)

    def describe(self) -> str:
        """``5 events in 4 chains (2 services, 2 addresses)``."""
        services = sum(1 for s in self._last if s.startswith(f"{SERVICE_PREFIX}."))
        others = self.chains - services
        parts = [f"{services} service{'s' if services != 1 else ''}"]
        if others:
            parts.append(f"{others} address{'es' if others != 1 else ''}")
        chains = f"{self.chains} chain{'s' if self.chains != 1 else ''}"
        events = f"{self.checked} event{'s' if self.checked != 1 else ''}"
        return f"{events} in {chains} ({', '.join(parts)})"


class AddressLedger:
    """Who the log says holds each address, beside which addresses live services name;
    fed in stream order, pure. ``problems`` compares the two at the end of the walk."""

    def __init__(self) -> None:
        self.services = Projection()
        self.holders: dict[Address, tuple[int, Holder | None]] = {}  # address -> (seq, holder)

    def feed(self, entry: Entry | RecordEntry) -> None:
        if isinstance(entry, Entry):
            self.services.apply(entry, changes=False)
            return
        record = entry.event
        if isinstance(record, AddressAllocated):
            self.holders[Address(record.kind, record.address)] = (entry.seq, record.holder)
        elif isinstance(record, AddressReleased):
            self.holders[Address(record.kind, record.address)] = (entry.seq, None)

    def problems(self) -> list[Break]:
        found: list[Break] = []
        named: dict[Address, tuple[str, str]] = {}  # address -> (service key, uid)
        for (namespace, name), record in sorted(self.services.services.items()):
            key = f"{namespace}/{name}"
            for address in sorted(held_by(record.service)):
                named[address] = (key, record.event_id)
                seq, holder = self.holders.get(address, (0, None))
                if holder is None or holder.uid != record.event_id:
                    held = f"held by {holder} (uid {holder.uid})" if holder else "not held"
                    found.append(
                        Break(
                            record.seq,
                            address.subject,
                            f"service {key} has {address}, but the log has it {held}",
                        )
                    )
        for address, (seq, holder) in sorted(self.holders.items()):
            if holder is None:
                continue
            owner = named.get(address)
            if owner is None or owner[1] != holder.uid:
                found.append(
                    Break(
                        seq,
                        address.subject,
                        f"{address} is held by {holder} (uid {holder.uid}), which is not a "
                        "live service with that address",
                    )
                )
        return found


@dataclass(frozen=True, slots=True)
class Unproven:
    """An event whose actor nothing the auditor trusts vouches for."""

    seq: int
    subject: str
    actor: str
    proof: Proof

    def __str__(self) -> str:
        proof = self.proof
        return f"seq {self.seq} {self.subject}: actor {self.actor!r} is {proof} ({proof.detail})"


async def verify(
    log: Log,
    checker: ChainChecker | None = None,
    trust: Trust | None = None,
    proofs: Counter[str] | None = None,
) -> AsyncIterator[Break | Unproven]:
    """Walk the whole log, yielding each break as it is found (and, at the end, each
    address held against the services), and with ``trust`` each event whose actor is not
    verified; ``proofs`` counts each proof status."""
    checker = checker or ChainChecker()
    proofs = proofs if proofs is not None else Counter()
    ledger = AddressLedger()
    async for message in _whole_log(log):
        entry = read_any(message)
        before = checker.last(message.subject)
        found = checker.check(message, entry)
        if found is not None:
            yield found
        if isinstance(entry, Skipped):
            continue
        ledger.feed(entry)
        actor = entry.event.actor
        proof = prove(
            message.subject, message.data, message.headers, actor, trust, stored_ns=message.time_ns
        )
        previous, previous_seq = (before[1], before[0]) if before else (None, 0)
        proof = placed(proof, entry.event.prev, previous, previous_seq)
        proofs[proof.status] += 1
        if proof.status in ("forged", "replayed", "expired"):
            yield Break(message.seq, message.subject, f"actor {actor!r}: {proof.detail}")
        elif trust is not None and proof.status != "verified":
            yield Unproven(message.seq, message.subject, actor, proof)
    for problem in ledger.problems():
        yield problem


async def _whole_log(log: Log) -> AsyncIterator[StoredMessage]:
    """Every message the stream held when the walk began, in order."""
    async with log.read(list(ALL_SUBJECTS), Start("all")) as tail:
        while True:
            batch = await tail.next_batch()
            if not batch:
                return
            for item in batch:
                if item is CAUGHT_UP:
                    return
                assert isinstance(item, StoredMessage)
                yield item
