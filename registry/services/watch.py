"""List, then watch, as one atomic read.

The current list and the live changes come from a single JetStream consumer
(last-per-subject, then everything newer), so there is no window between listing and
watching in which a change could be missed or seen twice: the race that plagues
list-then-watch clients elsewhere (kubernetes-client/python#1016). The same consumer reads
the services' status subjects (``registry.services.status``): a controller's report
about a live service is a ``MODIFIED`` of it, as in ``kubectl get -w``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from events import filter_for
from events.subjects import STATUS_PREFIX, status_filter, status_subject
from registry.log.port import Log
from registry.log.reader import Item, Start, read_until_caught_up
from registry.log.stored import StoredMessage
from registry.services.projection import Change, ServiceRecord
from registry.services.projector import SkipHandler, fold_current, report_skipped
from registry.services.status import status_for

__all__ = ["Snapshot", "watch"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The services live when the watch began; every later change follows it."""

    records: list[ServiceRecord]
    seq: int  # the last stream sequence the snapshot includes


async def watch(
    log: Log,
    namespace: str | None = None,
    name: str | None = None,
    *,
    on_skipped: SkipHandler = report_skipped,
    heartbeat: float = 1.0,
) -> AsyncIterator[Snapshot | Change]:
    """Yield one ``Snapshot``, then each ``Change`` as it is appended, until cancelled."""
    async with log.read(
        [filter_for(namespace, name), status_filter(namespace, name)],
        Start("last_per_subject"),
        heartbeat=heartbeat,
    ) as tail:
        messages = await read_until_caught_up(tail)
        statuses = {m.subject: m for m in messages if _is_status(m)}
        projector = await fold_current(log, [m for m in messages if not _is_status(m)], on_skipped)
        projector.position = max((m.seq for m in messages), default=0)
        yield Snapshot(
            [_with_status(r, statuses) for r in projector.projection.select()],
            projector.position,
        )
        while True:
            batch = await tail.next_batch()
            if not batch:
                return
            for change in _changes(projector.feed, batch, statuses, projector.projection.services):
                yield change


def _is_status(item: Item) -> bool:
    return isinstance(item, StoredMessage) and item.subject.startswith(STATUS_PREFIX + ".")


def _with_status(record: ServiceRecord, statuses: dict[str, StoredMessage]) -> ServiceRecord:
    return record.with_status(status_for(record, statuses.get(status_subject(*record.key))))


def _changes(
    feed: Callable[[list[Item]], list[Change]],
    batch: list[Item],
    statuses: dict[str, StoredMessage],
    live: Mapping[tuple[str, str], ServiceRecord],
) -> Iterator[Change]:
    """The batch's changes in order: service events folded, status reports about live
    services as ``MODIFIED`` of them."""
    run: list[Item] = []
    for item in [*batch, None]:
        if item is not None and not _is_status(item):
            run.append(item)
            continue
        for change in feed(run):
            yield replace(change, record=_with_status(change.record, statuses))
        run = []
        if item is None:
            return
        assert isinstance(item, StoredMessage)
        statuses[item.subject] = item
        _, namespace, name = item.subject.rsplit(".", 2)
        record = live.get((namespace, name))
        if record is not None:
            report = status_for(record, item)
            if report is not None:
                record = record.with_status(report)
                yield Change("MODIFIED", item.seq, record, record.event)
