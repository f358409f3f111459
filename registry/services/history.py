"""The past of the registry: one service's events, and the whole registry at a moment.

Both are folds of the log as stored, so an auditor sees exactly what readers at the
time could have seen; unreadable messages are reported, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events import Event, Service, filter_for, subject_for
from registry.errors import InvalidInput, NotFound
from registry.log.entry import Entry, Skipped, StoredMessage
from registry.log.port import Log
from registry.log.reader import Start
from registry.services.feed import read_log
from registry.services.projection import Projection, service_after
from registry.services.projector import SkipHandler, report_skipped
from registry.services.when import AtSequence, AtTime, When

__all__ = [
    "HistoryItem",
    "PastState",
    "resolve",
    "service_history",
    "state_at",
]


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One event of a service, and the service as it was right after it."""

    seq: int
    stored: datetime
    event: Event | None  # None: the message could not be read (see ``problem``)
    service: Service | None  # None: not live after this event
    problem: str | None = None
    message: StoredMessage | None = None  # as stored, for proving who wrote it


@dataclass(frozen=True, slots=True)
class PastState:
    projection: Projection
    seq: int  # the last stream sequence included
    moment: datetime | None  # when that sequence was stored (None: empty log)


async def service_history(log: Log, namespace: str, name: str) -> list[HistoryItem]:
    """Every event of one service, oldest first, deleted services included."""
    items: list[HistoryItem] = []
    live: Service | None = None
    async for record in read_log(log, subject_for(namespace, name)):
        entry = record.entry
        if isinstance(entry, Skipped):
            items.append(
                HistoryItem(
                    record.seq, record.message.time, None, live, entry.reason, record.message
                )
            )
            continue
        live = service_after(entry.event)
        items.append(
            HistoryItem(record.seq, record.message.time, entry.event, live, None, record.message)
        )
    if not items:
        raise NotFound(namespace, name)
    return items


async def resolve(log: Log, when: When) -> int:
    """The last stream sequence that was in the log at ``when`` (0: none yet)."""
    last = await log.last_sequence()
    if isinstance(when, AtSequence):
        if when.seq > last:
            raise InvalidInput("time", str(when.seq), f"the log ends at sequence {last}")
        return when.seq
    # The first message stored after the moment; everything before it was there.
    async for record in read_log(log, filter_for(), Start("time", time=when.time)):
        if record.message.time > when.time:
            return record.seq - 1
    return last


async def state_at(
    log: Log,
    when: When,
    namespace: str | None = None,
    name: str | None = None,
    on_skipped: SkipHandler = report_skipped,
) -> PastState:
    """The registry (or one namespace, or one service) as it was at ``when``."""
    boundary = await resolve(log, when)
    projection = Projection()
    moment = when.time if isinstance(when, AtTime) else None
    if boundary:
        async for record in read_log(log, filter_for(namespace, name), until_seq=boundary):
            if isinstance(record.entry, Entry):
                projection.apply(record.entry)
            else:
                on_skipped(record.entry)
        if moment is None:
            moment = await _stored_time(log, boundary)
    return PastState(projection, boundary, moment)


async def _stored_time(log: Log, seq: int) -> datetime | None:
    """When the message at ``seq`` was stored, whatever its subject (an address's record
    has a time as a service's event has)."""
    from events.subjects import ALL_SUBJECTS

    async with log.read(list(ALL_SUBJECTS), Start("seq", seq=seq)) as tail:
        for item in await tail.next_batch():  # the first batch starts at ``seq``
            if isinstance(item, StoredMessage):
                return item.time if item.seq == seq else None
    return None
