"""Tamper evidence: every event names the hash of the one before it on its service.

The writer puts ``prev = sha256(body of the subject's previous message)`` into each
event. Walking the log and recomputing shows any message that did not come through
the registry's write path with the log as it then stood: one published straight to
the stream, one whose link was forged or left out, or history changed underneath. It
proves order and completeness of each service's chain, not who wrote it: anyone
allowed to publish can compute a hash. Who wrote it is what the signatures of
``registry.proof`` add: the walk checks each event's too, and a signature that does not
hold, or names another actor, is a break; given the keys it trusts, an auditor also sees
every event whose actor nothing proves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from events import filter_for
from registry.commands import chain_hash
from registry.entry import Entry, StoredMessage, read_entry
from registry.feed import read_log
from registry.proof import Proof, Trust, prove
from registry.transport import Log

__all__ = ["Break", "ChainChecker", "Unproven", "verify"]


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

    def check(self, message: StoredMessage) -> Break | None:
        self.checked += 1
        previous = self._last.get(message.subject)
        self._last[message.subject] = (message.seq, chain_hash(message.data))
        entry = read_entry(message)
        if not isinstance(entry, Entry):
            return Break(message.seq, message.subject, f"unreadable: {entry.reason}")
        have = entry.event.prev
        if previous is None:
            if have is not None:
                return Break(
                    message.seq,
                    message.subject,
                    f"first event of the service, but links to {have[:12]}…",
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

    def check_all(self, messages: Iterable[StoredMessage]) -> list[Break]:
        return [b for b in (self.check(m) for m in messages) if b is not None]

    @property
    def chains(self) -> int:
        return len(self._last)


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
    """Walk the whole log, yielding each break as it is found, and with ``trust`` each
    event whose actor is not verified; ``proofs`` counts each proof status."""
    checker = checker or ChainChecker()
    proofs = proofs if proofs is not None else Counter()
    async for record in read_log(log, filter_for()):
        message = record.message
        found = checker.check(message)
        if found is not None:
            yield found
        if not isinstance(record.entry, Entry):
            continue
        actor = record.entry.event.actor
        proof = prove(message.subject, message.data, message.headers, actor, trust)
        proofs[proof.status] += 1
        if proof.status == "forged":
            yield Break(message.seq, message.subject, f"actor {actor!r}: {proof.detail}")
        elif trust is not None and proof.status != "verified":
            yield Unproven(message.seq, message.subject, actor, proof)
