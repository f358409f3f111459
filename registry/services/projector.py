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

from registry.log.entry import Entry, Skipped, StoredMessage, read_entry
from registry.log.port import Log
from registry.log.reader import CAUGHT_UP, Item, Start, read_until_caught_up
from registry.services.projection import Change, Projection

__all__ = [
    "Projector",
    "fold_current",
    "last_readable",
    "list_current",
    "rebuild",
    "report_skipped",
]

log = logging.getLogger(__name__)

SkipHandler = Callable[[Skipped], None]


def report_skipped(skipped: Skipped) -> None:
    log.warning("%s", skipped)


class Projector:
    """Decodes stored messages and folds them, reporting each unreadable one once."""

    def __init__(
        self, on_skipped: SkipHandler = report_skipped, *, keep_events: bool = False
    ) -> None:
        self.projection = Projection(keep_events=keep_events)
        self.on_skipped = on_skipped
        self.position = 0  # last stream sequence seen, readable or not

    def feed(self, items: Iterable[Item], *, changes: bool = True) -> list[Change]:
        """Fold every message among ``items`` (markers are passed over); the changes,
        unless ``changes`` is off."""
        made = []
        apply = self.projection.apply
        for message in items:
            if type(message) is not StoredMessage or message.seq <= self.position:
                continue
            self.position = message.seq
            entry = read_entry(message)
            if type(entry) is Skipped:
                self.on_skipped(entry)
                continue
            assert type(entry) is Entry
            change = apply(entry, changes=changes)
            if change is not None:
                made.append(change)
        return made


async def rebuild(
    log: Log, filter_subject: str, on_skipped: SkipHandler = report_skipped
) -> Projector:
    """Fold every event matching ``filter_subject`` from the start of the log, until
    everything the stream held when reading began is folded."""
    projector = Projector(on_skipped)
    async with log.read([filter_subject], Start("all")) as tail:
        while True:
            batch = await tail.next_batch()
            projector.feed(batch, changes=False)
            # (``is``, not ``in``: comparing every message to the marker costs more.)
            if not batch or any(item is CAUGHT_UP for item in batch):
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
    log: Log, messages: list[StoredMessage], on_skipped: SkipHandler, *, keep_events: bool = False
) -> Projector:
    """Fold last-per-subject messages, replacing unreadable ones by their subject's history
    (``keep_events``: see ``Projection``)."""
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
    projector = Projector(on_skipped, keep_events=keep_events)
    for entry in entries:
        projector.projection.apply(entry, changes=False)
    projector.position = max((m.seq for m in messages), default=0)
    return projector


async def list_current(
    log: Log, filter_subject: str, on_skipped: SkipHandler = report_skipped
) -> Projection:
    """Current state of the services matching ``filter_subject``, from their last events."""
    async with log.read([filter_subject], Start("last_per_subject")) as tail:
        messages = await read_until_caught_up(tail)
    return (await fold_current(log, messages, on_skipped, keep_events=True)).projection
