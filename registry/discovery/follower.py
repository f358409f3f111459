"""Services joined with their live tasks: endpoints, as they change (read once:
``registry.discovery.current``).

Two streams meet here: a service's selector and ports come from the event log, its tasks
from the liveness stream. A listing reads the namespace's tasks once and matches each
service against them (``service_endpoints``).

``Follower`` keeps them current: a read of the service log (resumed after a reconnect,
since its history is never lost) beside a read of the liveness stream (read again from
the current state after a reconnect, after a roll-up, and every ``resync`` seconds,
since expired heartbeats and their markers are gone for good). Between the two, what it
holds stays what the server last said, and ``stale_for`` says how long ago that was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from events import filter_for
from events.liveness import selector_filter, task_filter
from registry.discovery.endpoints import Endpoints, endpoints_for, index_label
from registry.discovery.tasks import LiveTask, TaskChange, TaskView
from registry.log.port import Log
from registry.log.reader import CAUGHT_UP, RESTARTED, Item, Reader, Start, read_until_caught_up
from registry.log.stored import StoredMessage
from registry.services.projection import Change, ServiceKey, ServiceRecord
from registry.services.projector import SkipHandler, fold_current, report_skipped

__all__ = [
    "Discovered",
    "EndpointsChanged",
    "Follower",
    "ServiceEndpoints",
    "TasksChanged",
    "service_endpoints",
]

RESYNC_S = 30.0


@dataclass(frozen=True, slots=True)
class ServiceEndpoints:
    """A live service and its endpoints."""

    record: ServiceRecord
    endpoints: Endpoints

    @property
    def key(self) -> ServiceKey:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Discovered:
    """What a ``Follower`` first hands over: every service in scope and its endpoints (and,
    read ``with_tasks``, every live task in scope, for readers that name tasks: DNS)."""

    services: list[ServiceEndpoints]
    tasks: tuple[LiveTask, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointsChanged:
    """A service appeared, changed or went away (``change`` is its event), or only its
    endpoints changed (``change`` is None: a task came, went, or turned ready)."""

    kind: Literal["ADDED", "MODIFIED", "DELETED"]
    service: ServiceEndpoints
    change: Change | None = None


@dataclass(frozen=True, slots=True)
class TasksChanged:
    """Tasks that came, went or were heard again (only when read ``with_tasks``): each
    change's ``after`` is the task's newest heartbeat, None once it is gone. After a fresh
    read of the liveness stream every task read before or since is listed, so a reader
    that applies the changes one by one ends equal to the server."""

    changes: list[TaskChange]


def service_endpoints(records: Iterable[ServiceRecord], view: TaskView) -> list[ServiceEndpoints]:
    """Each service's endpoints among the tasks of ``view``."""
    return [ServiceEndpoints(r, _endpoints(r, view)) for r in records]


def _endpoints(record: ServiceRecord, view: TaskView) -> Endpoints:
    service = record.service
    label = index_label(service.selector)
    tasks: list[LiveTask] = [] if label is None else view.carrying(service.namespace, *label)
    return endpoints_for(service, tasks)


class Follower:
    """The services of a namespace (or one service, or all) and their endpoints: first all
    of them (``Discovered``), then each change (``EndpointsChanged``), until closed.
    ``with_tasks()`` also hands over the live tasks themselves (``TasksChanged``)."""

    def __init__(
        self,
        log: Log,
        namespace: str | None = None,
        name: str | None = None,
        *,
        on_skipped: SkipHandler = report_skipped,
        resync: float = RESYNC_S,
        heartbeat: float = 1.0,
    ) -> None:
        if name is not None and namespace is None:
            raise ValueError("a service name needs its namespace")
        self.log = log
        self.namespace = namespace
        self.name = name
        self.on_skipped = on_skipped
        self.resync = resync
        self.heartbeat = heartbeat
        self.services: dict[ServiceKey, ServiceRecord] = {}
        self.view = TaskView(on_skipped)
        self.shown: dict[ServiceKey, Endpoints] = {}
        self._pending: TaskView | None = None
        self._queue: asyncio.Queue[tuple[str, int, object]] = asyncio.Queue()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._generation = 0  # of the liveness read; older reads' items are dropped
        self._filters: tuple[str, ...] | None = None  # of the liveness read, None: none
        # Whether _filters has been chosen: a service without a selector wants no tasks
        # (None), which must still mark them read rather than look like "no change".
        self._filters_chosen = False
        self._services_read: Reader | None = None
        self._tasks_read: Reader | None = None
        self._resync_now = asyncio.Event()
        self._services_ready = False
        self._tasks_ready = False
        # (namespace, label key, value) -> services read by that label; None: rebuild.
        self._by_label: dict[tuple[str, str, str], set[ServiceKey]] | None = None
        self._with_tasks = False

    # -- freshness ------------------------------------------------------------------------

    @property
    def last_heard(self) -> float:
        """Event-loop time the server last confirmed what this holds (0: never)."""
        reads = [r for r in (self._tasks_read, self._services_read) if r is not None]
        heard = [r.last_heard for r in reads]
        return min(heard) if heard else 0.0

    @property
    def stale_for(self) -> float:
        """Seconds since the server last confirmed what this holds, once that is longer
        than the server's own heartbeat interval allows; 0.0 while it keeps confirming."""
        heard = self.last_heard
        if not heard:
            return 0.0
        silence = asyncio.get_running_loop().time() - heard
        return silence if silence > 3 * self.heartbeat else 0.0

    # -- the reads ------------------------------------------------------------------------

    async def close(self) -> None:
        # A snapshot: while a pump is awaited, a reader still running may start another
        # (``_want_tasks``), and iterating the dict itself then failed ("dictionary
        # changed size during iteration", seen once as a watch's Ctrl-C traceback).
        pumps = list(self._pumps.values())
        self._pumps.clear()
        for pump in pumps:
            pump.cancel()
        for pump in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump

    async def __aenter__(self) -> Follower:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _start(self, name: str, pump: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(pump)
        task.add_done_callback(self._pump_ended)
        self._pumps[name] = task

    def _pump_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._queue.put_nowait(("failed", 0, task.exception()))

    async def _read_services(self) -> None:
        filters = [filter_for(self.namespace, self.name)]
        async with self.log.read(
            filters, Start("last_per_subject"), heartbeat=self.heartbeat
        ) as tail:
            self._services_read = tail
            projector = await fold_current(
                self.log, await read_until_caught_up(tail), self.on_skipped
            )
            self._queue.put_nowait(("services", 0, projector.projection.select()))
            while True:
                batch = await tail.next_batch()
                if not batch:
                    return
                changes = projector.feed(batch)
                if changes:
                    self._queue.put_nowait(("changes", 0, changes))

    async def _read_tasks(self, filters: Sequence[str], generation: int) -> None:
        liveness = await self.log.liveness()
        loop = asyncio.get_running_loop()
        while True:  # each pass reads the current state again
            async with liveness.read(filters) as tail:
                self._tasks_read = tail
                self._resync_now.clear()
                self._queue.put_nowait(("tasks", generation, [RESTARTED]))
                deadline = loop.time() + self.resync
                while True:
                    batch = await _next_or_none(tail, self._resync_now, deadline - loop.time())
                    if batch is None:
                        break  # time for a fresh read
                    if not batch:
                        return
                    self._queue.put_nowait(("tasks", generation, batch))

    def _want_tasks(self, filters: tuple[str, ...] | None) -> None:
        """Read the tasks matching ``filters`` (None: none), if that is not what is read."""
        if self._filters_chosen and filters == self._filters:
            return
        self._filters, self._filters_chosen = filters, True
        self._generation += 1
        old = self._pumps.pop("tasks", None)
        if old is not None:
            old.cancel()
        self._tasks_read = None
        self._pending = None
        if filters is None:
            self.view = TaskView(self.on_skipped)
            self._tasks_ready = True
            return
        self._tasks_ready = False
        self._start("tasks", self._read_tasks(filters, self._generation))

    def _one_service_filters(self) -> tuple[str, ...] | None:
        record = self.services.get((self.namespace or "", self.name or ""))
        if record is None:
            return None
        label = index_label(record.service.selector)
        return None if label is None else (selector_filter(record.service.namespace, *label),)

    # -- joining them ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncGenerator[Discovered | EndpointsChanged, None]:
        return self._endpoints_only()

    def with_tasks(self) -> AsyncGenerator[Discovered | EndpointsChanged | TasksChanged, None]:
        """The endpoints as ``async for`` gives them, and each task that changes too; a
        reader that answers for tasks by name (DNS) needs both, from one read, so that a
        task and the endpoints it is in never disagree."""
        if self.name is not None:
            raise ValueError("tasks are handed over for a namespace or all, not one service")
        self._with_tasks = True
        return self._follow()

    async def _endpoints_only(self) -> AsyncGenerator[Discovered | EndpointsChanged, None]:
        async with contextlib.aclosing(self._follow()) as items:
            async for item in items:
                if not isinstance(item, TasksChanged):  # none unless asked with_tasks
                    yield item

    async def _follow(self) -> AsyncGenerator[Discovered | EndpointsChanged | TasksChanged, None]:
        self._start("services", self._read_services())
        if self.name is None:
            self._want_tasks(tuple(task_filter(self.namespace)))
        started = False
        try:
            while True:
                kind, generation, payload = await self._queue.get()
                if kind == "failed":
                    assert isinstance(payload, BaseException)
                    raise payload
                if kind == "tasks" and generation != self._generation:
                    continue
                out = self._handle(kind, payload)
                if not started:
                    if self._services_ready and self._tasks_ready:
                        started = True
                        yield self._discovered()
                    continue
                for item in out:
                    yield item
        finally:
            await self.close()

    def _discovered(self) -> Discovered:
        services = service_endpoints(sorted(self.services.values(), key=lambda r: r.key), self.view)
        self.shown = {s.key: s.endpoints for s in services}
        return Discovered(services, tuple(self.view.tasks()) if self._with_tasks else ())

    def _handle(self, kind: str, payload: object) -> list[EndpointsChanged | TasksChanged]:
        self._by_label = None if kind in ("services", "changes") else self._by_label
        if kind == "services":
            assert isinstance(payload, list)
            self.services = {r.key: r for r in payload}
            self._services_ready = True
            if self.name is not None:
                self._want_tasks(self._one_service_filters())
            return []
        if kind == "changes":
            assert isinstance(payload, list)
            return list(self._service_changes(payload))
        assert isinstance(payload, list)
        return self._task_items(payload)

    def _service_changes(self, changes: list[Change]) -> list[EndpointsChanged]:
        out = []
        for change in changes:
            key = change.record.key
            if change.kind == "DELETED":
                self.services.pop(key, None)
                gone = self.shown.pop(key, None) or endpoints_for(change.record.service, ())
                out.append(
                    EndpointsChanged("DELETED", ServiceEndpoints(change.record, gone), change)
                )
                continue
            self.services[key] = change.record
            if self.name is not None:
                self._want_tasks(self._one_service_filters())
                if not self._tasks_ready:
                    continue  # reported once the tasks its new selector picks are read
            endpoints = _endpoints(change.record, self.view)
            self.shown[key] = endpoints
            out.append(
                EndpointsChanged(change.kind, ServiceEndpoints(change.record, endpoints), change)
            )
        return out

    def _task_items(self, items: list[Item]) -> list[EndpointsChanged | TasksChanged]:
        changes: list[TaskChange] = []
        swapped = False
        for item in items:
            if item is RESTARTED:
                self._pending = TaskView(self.on_skipped)
            elif item is CAUGHT_UP:
                if self._pending is not None:
                    before, self.view, self._pending = self.view, self._pending, None
                    # A roll-up met while reading the state afresh is in that state
                    # already: reading again would meet it again, for ever.
                    self.view.rolled_up = False
                    swapped = True
                    if self._with_tasks:
                        changes.extend(_differences(before, self.view))
                self._tasks_ready = True
            else:
                assert type(item) is StoredMessage
                if self._pending is not None:
                    self._pending.apply(item)
                elif (change := self.view.apply(item)) is not None:
                    changes.append(change)
        if self.view.rolled_up:
            self.view.rolled_up = False
            self._resync_now.set()  # a live roll-up took subjects away without markers
        out: list[EndpointsChanged | TasksChanged] = []
        if self._with_tasks and changes and self._services_ready and self._tasks_ready:
            out.append(TasksChanged(changes))
        if swapped:
            out.extend(self._recompute(list(self.services)))
        else:
            out.extend(self._recompute(self._concerned(changes)))
        return out

    def _concerned(self, changes: list[TaskChange]) -> list[ServiceKey]:
        """The services a task's change may concern: those read by one of its labels."""
        if not changes:
            return []
        if self.name is not None:
            return list(self.services)
        if self._by_label is None:
            self._by_label = {}
            for key, record in self.services.items():
                label = index_label(record.service.selector)
                if label is not None:
                    self._by_label.setdefault((key[0], *label), set()).add(key)
        by_label = self._by_label
        wanted = {(c.key[0], *label) for c in changes for label in c.labels}
        return sorted({key for index in wanted for key in by_label.get(index, ())})

    def _recompute(self, keys: Iterable[ServiceKey]) -> list[EndpointsChanged]:
        if not (self._services_ready and self._tasks_ready):
            return []
        out = []
        for key in keys:
            record = self.services.get(key)
            if record is None:
                continue
            endpoints = _endpoints(record, self.view)
            before = self.shown.get(key)
            self.shown[key] = endpoints
            if before is not None and before != endpoints:
                out.append(EndpointsChanged("MODIFIED", ServiceEndpoints(record, endpoints)))
            elif before is None:
                out.append(EndpointsChanged("ADDED", ServiceEndpoints(record, endpoints)))
        return out


def _differences(before: TaskView, after: TaskView) -> list[TaskChange]:
    """Every task of either view whose newest heartbeat is not the same stored message in
    both (a renewal counts: the reader compares what it cares about)."""
    changes = []
    for key in sorted(before.by_task.keys() | after.by_task.keys()):
        old, new = before.task(key), after.task(key)
        if old is None or new is None or old.seq != new.seq:
            changes.append(TaskChange(key, old, new))
    return changes


async def _next_or_none(reader: Reader, now: asyncio.Event, within: float) -> list[Item] | None:
    """The reader's next batch; None when ``within`` seconds pass or ``now`` is set first."""
    if within <= 0 or now.is_set():
        return None
    batch = asyncio.ensure_future(reader.next_batch())
    woken = asyncio.ensure_future(now.wait())
    try:
        done, _ = await asyncio.wait(
            {batch, woken}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        woken.cancel()
    if batch in done:
        return batch.result()
    batch.cancel()
    try:
        return await batch  # it may have finished before the cancel reached it
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # it was us being cancelled, not only the read
        return None
