"""Live tasks and one service's endpoints as they are now, read once from the liveness
stream (``registry.discovery.follower`` keeps them current instead).

Reading one service's endpoints asks the server for the tasks carrying its selector's
first label only (``events.liveness``), so it costs the same whatever other services
have. A one-shot read (``get service NAME``'s ENDPOINTS column, ``get endpoints NAME``)
loads this module, not the follower.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.liveness import selector_filter
from registry.discovery.endpoints import Endpoints, endpoints_for, index_label
from registry.discovery.tasks import TaskView
from registry.log.port import Log
from registry.log.reader import read_until_caught_up
from registry.services.projection import ServiceRecord
from registry.services.projector import SkipHandler, report_skipped

__all__ = ["endpoints_of", "read_tasks"]


async def read_tasks(
    log: Log, filters: Sequence[str], on_skipped: SkipHandler = report_skipped
) -> TaskView:
    """The live tasks matching ``filters``, once: the current state of the liveness stream."""
    view = TaskView(on_skipped)
    async with (await log.liveness()).read(filters) as reader:
        view.feed(await read_until_caught_up(reader))
    return view


async def endpoints_of(
    log: Log, record: ServiceRecord, on_skipped: SkipHandler = report_skipped
) -> Endpoints:
    """One service's endpoints, reading only the tasks that carry its selector's first label."""
    service = record.service
    label = index_label(service.selector)
    if label is None:
        return endpoints_for(service, ())
    view = await read_tasks(log, [selector_filter(service.namespace, *label)], on_skipped)
    return endpoints_for(service, view.tasks())
