"""List, then watch, as one atomic read.

The current list and the live changes come from a single JetStream consumer
(last-per-subject, then everything newer), so there is no window between listing and
watching in which a change could be missed or seen twice: the race that plagues
list-then-watch clients elsewhere (kubernetes-client/python#1016).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from events import filter_for
from registry.log.port import Log
from registry.log.reader import Start, read_until_caught_up
from registry.services.projection import Change, ServiceRecord
from registry.services.projector import SkipHandler, fold_current, report_skipped

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
        [filter_for(namespace, name)], Start("last_per_subject"), heartbeat=heartbeat
    ) as tail:
        projector = await fold_current(log, await read_until_caught_up(tail), on_skipped)
        yield Snapshot(projector.projection.select(), projector.position)
        while True:
            batch = await tail.next_batch()
            if not batch:
                return
            for change in projector.feed(batch):
                yield change
