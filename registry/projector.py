"""Feeding the log into the fold: full rebuilds, current state, and live updates.

Two ways to reach the same state. ``rebuild`` folds every event from the start (what
an auditor trusts). ``list_current`` folds only the last event of each service's
subject (a JetStream last-per-subject consumer), which is equal because a service's
state depends only on its last event; where that last message is unreadable, it folds
that one subject's history instead, so poison never changes the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from registry.entry import Entry, Skipped, StoredMessage, read_entry
from registry.projection import Change, Projection
from registry.transport import CAUGHT_UP, Log, Reader, Start

__all__ = [
    "Projector",
    "feed_all",
    "fold_current",
    "last_readable",
    "list_current",
    "read_until_caught_up",
    "rebuild",
    "report_skipped",
]

log = logging.getLogger(__name__)

SkipHandler = Callable[[Skipped], None]


def report_skipped(skipped: Skipped) -> None:
    log.warning("%s", skipped)


class Projector:
    """Decodes stored messages and folds them, reporting each unreadable one once."""

    def __init__(self, on_skipped: SkipHandler = report_skipped) -> None:
        self.projection = Projection()
        self.on_skipped = on_skipped
        self.position = 0  # last stream sequence seen, readable or not

    def feed(self, messages: Iterable[StoredMessage]) -> list[Change]:
        changes = []
        apply = self.projection.apply
        for message in messages:
            if message.seq <= self.position:
                continue
            self.position = message.seq
            entry = read_entry(message)
            if isinstance(entry, Skipped):
                self.on_skipped(entry)
                continue
            change = apply(entry)
            if change is not None:
                changes.append(change)
        return changes


async def read_until_caught_up(tail: Reader) -> list[StoredMessage]:
    """Everything the tail holds up to the moment it was opened."""
    messages: list[StoredMessage] = []
    while True:
        batch = await tail.next_batch()
        if not batch:
            return messages
        for item in batch:
            if item is CAUGHT_UP:
                # Anything after the marker in this batch is already live news.
                rest = batch[batch.index(item) + 1 :]
                tail.push_back(rest)
                return messages
            assert isinstance(item, StoredMessage)
            messages.append(item)


async def feed_all(
    log: Log,
    filter_subject: str,
    feed: Callable[[Iterable[StoredMessage]], object],
) -> None:
    """Hand every message matching ``filter_subject``, from the start, to ``feed`` in
    batches, until everything the stream held when reading began has been handed over."""
    async with log.read([filter_subject], Start("all")) as tail:
        while True:
            batch = await tail.next_batch()
            feed(m for m in batch if isinstance(m, StoredMessage))
            if CAUGHT_UP in batch or not batch:
                return


async def rebuild(
    log: Log, filter_subject: str, on_skipped: SkipHandler = report_skipped
) -> Projector:
    """Fold every event matching ``filter_subject`` from the start of the log."""
    projector = Projector(on_skipped)
    await feed_all(log, filter_subject, projector.feed)
    return projector


async def last_readable(
    log: Log, subject: str, on_skipped: SkipHandler = report_skipped
) -> Entry | None:
    """The last event of one subject this code can read, scanning its history."""
    found: Entry | None = None
    async with log.read([subject], Start("all")) as tail:
        for message in await read_until_caught_up(tail):
            entry = read_entry(message)
            if isinstance(entry, Entry):
                found = entry
            else:
                on_skipped(entry)
    return found


async def fold_current(
    log: Log, messages: list[StoredMessage], on_skipped: SkipHandler
) -> Projector:
    """Fold last-per-subject messages, replacing unreadable ones by their subject's history."""
    entries: list[Entry] = []
    for message in messages:
        entry = read_entry(message)
        if isinstance(entry, Skipped):
            on_skipped(entry)
            older = await last_readable(log, message.subject, on_skipped=lambda _: None)
            if older is None:
                continue
            entry = older
        entries.append(entry)
    entries.sort(key=lambda e: e.seq)
    projector = Projector(on_skipped)
    for entry in entries:
        projector.projection.apply(entry)
    projector.position = max((m.seq for m in messages), default=0)
    return projector


async def list_current(
    log: Log, filter_subject: str, on_skipped: SkipHandler = report_skipped
) -> Projection:
    """Current state of the services matching ``filter_subject``, from their last events."""
    async with log.read([filter_subject], Start("last_per_subject")) as tail:
        messages = await read_until_caught_up(tail)
    return (await fold_current(log, messages, on_skipped)).projection
