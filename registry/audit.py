"""Tamper evidence: every event names the hash of the one before it on its service.

The writer puts ``prev = sha256(body of the subject's previous message)`` into each
event. Walking the log and recomputing shows any message that did not come through
the registry's write path with the log as it then stood: one published straight to
the stream, one whose link was forged or left out, or history changed underneath. It
proves order and completeness of each service's chain, not who wrote it: anyone
allowed to publish can compute a hash, which is what server permissions are for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from events import filter_for
from registry.commands import chain_hash
from registry.entry import Entry, StoredMessage, read_entry
from registry.feed import read_log
from registry.transport import Log

__all__ = ["Break", "ChainChecker", "verify"]


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


async def verify(log: Log, checker: ChainChecker | None = None) -> AsyncIterator[Break]:
    """Walk the whole log, yielding each break as it is found."""
    checker = checker or ChainChecker()
    async for record in read_log(log, filter_for()):
        found = checker.check(record.message)
        if found is not None:
            yield found
