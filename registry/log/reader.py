"""Ordered reads of a log, as the core sees them: where a read starts, what it hands over
(stored messages and its markers), and reading until it has caught up.

Both logs the registry reads (the service log and the liveness stream) are read this way,
which is why it is a module of its own: ``registry.log.port`` and
``registry.log.liveness`` both build on it, and neither on the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Final, Literal, Protocol, Self

from registry.log.stored import StoredMessage

__all__ = [
    "CAUGHT_UP",
    "FROM_THE_START",
    "RESTARTED",
    "CaughtUp",
    "Item",
    "Reader",
    "Restarted",
    "Start",
    "read_until_caught_up",
]


@dataclass(frozen=True, slots=True)
class Start:
    """Where an ordered read begins."""

    policy: Literal["all", "last_per_subject", "new", "seq", "time"] = "all"
    seq: int | None = None
    time: datetime | None = None


class CaughtUp:
    """Marker a reader gets once, when everything stored at its start has been delivered."""

    def __repr__(self) -> str:
        return "CAUGHT_UP"


CAUGHT_UP: Final = CaughtUp()


class Restarted:
    """Marker a reader of the liveness stream gets when its read starts over: what follows,
    up to the next ``CAUGHT_UP``, is the current state again, replacing what it had."""

    def __repr__(self) -> str:
        return "RESTARTED"


RESTARTED: Final = Restarted()

FROM_THE_START: Final = Start()

Item = StoredMessage | CaughtUp | Restarted


class Reader(Protocol):
    """An ordered read of the log, filtered on the server: every matching message once, in
    stream order, with no gap (a gap is re-read, never skipped); ``CAUGHT_UP`` once when
    everything stored at the start has been delivered. Live readers go on after it."""

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last message handed over."""
        ...

    @property
    def last_heard(self) -> float:
        """Event-loop time of the last message or heartbeat the server sent this read:
        how fresh what it handed over is known to be."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> Item:
        """One item at a time; any number of loops may take turns on one reader."""
        ...

    async def next_batch(self) -> list[Item]:
        """Everything delivered so far, waiting for at least one item; [] once closed."""
        ...

    def push_back(self, items: Sequence[Item]) -> None:
        """Return unread items to the front, for a reader that took more than it used."""
        ...


async def read_until_caught_up(tail: Reader) -> list[StoredMessage]:
    """Everything the tail holds up to the moment it was opened (a read of the liveness
    stream that starts over starts this over too)."""
    messages: list[StoredMessage] = []
    while True:
        batch = await tail.next_batch()
        if not batch:
            return messages
        for index, item in enumerate(batch):
            if item is CAUGHT_UP:
                # Anything after the marker in this batch is already live news.
                tail.push_back(batch[index + 1 :])
                return messages
            if item is RESTARTED:
                messages.clear()
                continue
            assert isinstance(item, StoredMessage)
            messages.append(item)
