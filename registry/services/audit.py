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

A walk may start later (``since``): each chain's first link met is then checked against
the message before it on its subject (asked of the log), and the ledger is checked
against each subject's last message. A break an admin investigated is acknowledged with a
``BreakAcknowledged`` (``events.audit``, ``acknowledge``): the walk still finds it, and
the reader reports it as acknowledged (``read_acknowledgements``) instead of failing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from events import AddressAllocated, AddressReleased, Holder, encode, new_event_id, utc_now
from events.audit import BreakAcknowledged
from events.codec import DecodeError, decode_acknowledgement
from events.subjects import ACKNOWLEDGED_SUBJECT, ADDRESS_PREFIX, ALL_SUBJECTS
from events.subjects import PREFIX as SERVICE_PREFIX
from registry.addresses.holdings import Address, held_by
from registry.errors import InvalidInput, ServerError
from registry.log.entry import Entry, RecordEntry, Skipped, StoredMessage, read_any
from registry.log.port import Log, WrongLastSequence
from registry.log.reader import CAUGHT_UP, Start, read_until_caught_up
from registry.services.decisions import chain_hash
from registry.services.projection import Projection
from registry.services.proof import Proof, Trust, placed, prove

__all__ = [
    "Acknowledged",
    "AddressLedger",
    "Break",
    "ChainChecker",
    "Unproven",
    "acknowledge",
    "read_acknowledgements",
    "verify",
]


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
        self._met: set[str] = set()  # subjects checked (not only seeded)
        self._unknown: set[str] = set()  # subjects whose first link cannot be checked
        self.checked = 0

    def seed(self, subject: str, seq: int, digest: str) -> None:
        """What a walk starting later knows of ``subject``: its message before the walk."""
        self._last[subject] = (seq, digest)

    def unknown(self, subject: str) -> None:
        """The message before the walk on ``subject`` could not be read for certain: its
        first link is taken as it is."""
        self._unknown.add(subject)

    def check(
        self, message: StoredMessage, entry: Entry | RecordEntry | Skipped | None = None
    ) -> Break | None:
        self.checked += 1
        self._met.add(message.subject)
        previous = self._last.get(message.subject)
        self._last[message.subject] = (message.seq, chain_hash(message.data))
        entry = entry or read_any(message)
        if isinstance(entry, Skipped):
            return Break(message.seq, message.subject, f"unreadable: {entry.reason}")
        have = entry.event.prev
        if previous is None and message.subject in self._unknown:
            self._unknown.discard(message.subject)
            return None
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
        return len(self._met)

    def describe(self) -> str:
        """``6 events in 5 chains (2 services, 2 addresses, 1 other)``."""
        services = sum(1 for s in self._met if s.startswith(f"{SERVICE_PREFIX}."))
        addresses = sum(1 for s in self._met if s.startswith(f"{ADDRESS_PREFIX}."))
        others = self.chains - services - addresses
        parts = [f"{services} service{'s' if services != 1 else ''}"]
        if addresses:
            parts.append(f"{addresses} address{'es' if addresses != 1 else ''}")
        if others:  # the ranges, quotas, status reports, acknowledgements
            parts.append(f"{others} other{'s' if others != 1 else ''}")
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
    *,
    since: int | None = None,
    subject: str | None = None,
) -> AsyncIterator[Break | Unproven]:
    """Walk the whole log (from stream sequence ``since`` if given), yielding each break
    as it is found (and, at the end, each address held against the services), and with
    ``trust`` each event whose actor is not verified; ``proofs`` counts each proof status.

    ``subject``: one chain only (a service's, from its start), for a page about that
    service; the address ledger, which is about the whole log, is then not checked."""
    checker = checker or ChainChecker()
    proofs = proofs if proofs is not None else Counter()
    ledger = AddressLedger()
    start = Start("all") if since is None else Start("seq", seq=since)
    subjects = list(ALL_SUBJECTS) if subject is None else [subject]
    async for batch in _whole_log(log, start, subjects):
        if since is not None:
            await _seed(log, checker, batch)
        for message in batch:
            entry = read_any(message)
            before = checker.last(message.subject)
            found = checker.check(message, entry)
            if found is not None:
                yield found
            if isinstance(entry, Skipped):
                continue
            if since is None and subject is None:
                ledger.feed(entry)
            actor = entry.event.actor
            proof = prove(
                message.subject,
                message.data,
                message.headers,
                actor,
                trust,
                stored_ns=message.time_ns,
            )
            previous, previous_seq = (before[1], before[0]) if before else (None, 0)
            proof = placed(proof, entry.event.prev, previous, previous_seq)
            proofs[proof.status] += 1
            if proof.status in ("forged", "replayed", "expired"):
                yield Break(message.seq, message.subject, f"actor {actor!r}: {proof.detail}")
            elif trust is not None and proof.status != "verified":
                yield Unproven(message.seq, message.subject, actor, proof)
    if subject is not None:
        return
    if since is not None:
        # The ledger is about what each subject holds last: read that, not the whole log.
        async with log.read(list(ALL_SUBJECTS), Start("last_per_subject")) as tail:
            for message in await read_until_caught_up(tail):
                last = read_any(message)
                if not isinstance(last, Skipped):
                    ledger.feed(last)
    for problem in ledger.problems():
        yield problem


async def _seed(log: Log, checker: ChainChecker, batch: list[StoredMessage]) -> None:
    """For each subject a later walk meets first in ``batch``, the message before it."""
    firsts: dict[str, int] = {}
    for message in batch:
        if checker.last(message.subject) is None:
            firsts.setdefault(message.subject, message.seq)
    if not firsts:
        return
    found = await log.before_many(list(firsts.items()))
    for subject, seq in firsts.items():
        if (subject, seq) not in found:
            checker.unknown(subject)
            continue
        before = found[(subject, seq)]
        if before is not None:
            checker.seed(subject, before.seq, chain_hash(before.data))


async def _whole_log(
    log: Log, start: Start, subjects: list[str]
) -> AsyncIterator[list[StoredMessage]]:
    """Every message of ``subjects`` the stream held when the walk began, from ``start``,
    in batches."""
    async with log.read(subjects, start) as tail:
        while True:
            batch = await tail.next_batch()
            if not batch:
                return
            messages: list[StoredMessage] = []
            for item in batch:
                if item is CAUGHT_UP:
                    break
                assert isinstance(item, StoredMessage)
                messages.append(item)
            if messages:
                yield messages
            if len(messages) < len(batch):
                return  # caught up


# -- acknowledged breaks --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An admin's acknowledgement of the break at ``event.seq``, stored at ``seq``."""

    seq: int
    event: BreakAcknowledged

    def __str__(self) -> str:
        when = self.event.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"acknowledged by {self.event.actor} at {when}: {self.event.reason}"


async def read_acknowledgements(log: Log) -> dict[int, Acknowledged]:
    """Every break acknowledged, by its sequence (the latest acknowledgement of each).
    One stored before the break it names is no acknowledgement of it: nobody investigates
    a break before it happens. An unreadable one acknowledges nothing (the walk reports
    it as a break of its own)."""
    async with log.read([ACKNOWLEDGED_SUBJECT], Start("all")) as tail:
        messages = await read_until_caught_up(tail)
    found: dict[int, Acknowledged] = {}
    for message in messages:
        try:
            event = decode_acknowledgement(message.data)
        except DecodeError:
            continue
        if event.seq < message.seq:
            found[event.seq] = Acknowledged(message.seq, event)
    return found


async def acknowledge(log: Log, seq: int, reason: str, actor: str) -> tuple[Acknowledged, bool]:
    """Record that the break at ``seq`` was investigated, for ``reason``; the
    acknowledgement, and whether it is new (False: it was acknowledged already, and
    nothing is written). ``InvalidInput`` unless ``audit verify`` finds a break there."""
    last = await log.last_sequence()
    if not 1 <= seq <= last:
        raise InvalidInput(
            "SEQ", seq, f"not a sequence of the log: the log ends at sequence {last}"
        )
    if not reason.strip() or len(reason) > 1024 or not reason.isprintable():
        raise InvalidInput(
            "--reason", reason[:60], "say why in one printable line of at most 1,024 characters"
        )
    known = await read_acknowledgements(log)
    if seq in known:
        return known[seq], False
    breaks = {found.seq async for found in verify(log) if isinstance(found, Break)}
    if seq not in breaks:
        raise InvalidInput("SEQ", seq, "audit verify finds no break there: nothing to acknowledge")
    for _ in range(5):
        previous = await log.last(ACKNOWLEDGED_SUBJECT)
        event = BreakAcknowledged(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(previous.data) if previous is not None else None,
            seq=seq,
            reason=reason,
        )
        try:
            stored = await log.append(
                ACKNOWLEDGED_SUBJECT,
                encode(event),
                msg_id=event.id,
                expected_last_subject_seq=previous.seq if previous is not None else 0,
            )
        except WrongLastSequence:
            continue
        return Acknowledged(stored, event), True
    raise ServerError("acknowledgements kept being written while we wrote ours; try again")
