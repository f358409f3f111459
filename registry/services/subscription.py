"""Subscribing to the registry's events from a program, live or durable.

A subscription is a gap-checked, in-order read of the log (``Tail``) filtered on the
server by namespace and name. Named, it is durable the way a projection is in an
event-sourced system: it stores the last sequence the program acknowledged and resumes
right after it, so a subscriber that stops and restarts sees every event at least
once, in log order (hence in order per service), with no timers or redelivery rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, assert_never

from events import (
    Event,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatusChanged,
    ServiceUpdated,
    filter_for,
    subject_for,
)
from events.names import check_name
from registry.errors import InvalidInput, ServerError
from registry.log.entry import Entry, Skipped, StoredMessage, read_entry
from registry.log.port import Checkpoints, Log
from registry.log.reader import CAUGHT_UP, Reader, Start
from registry.services.feed import read_log
from registry.services.projection import Change, Projection, ServiceRecord
from registry.services.projector import SkipHandler, report_skipped

__all__ = ["Delivery", "StartAt", "Subscription"]

StartAt = Literal["new", "beginning"] | int | datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event, where it sits in the log, and when the server stored it."""

    seq: int
    subject: str
    stored: datetime
    event: Event
    data: bytes  # the event as stored


def _start(start: StartAt) -> Start:
    if start == "new":
        return Start("new")
    if start == "beginning":
        return Start("all")
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise InvalidInput("start", start.isoformat(), "give a timezone-aware time")
        return Start("time", time=start.astimezone(UTC))
    if isinstance(start, int) and not isinstance(start, bool) and start >= 1:
        return Start("seq", seq=start)
    raise InvalidInput("start", str(start), "use 'new', 'beginning', a sequence >= 1 or a time")


class Subscription:
    """``async for delivery in subscription``: typed events as they are appended.

    ``start`` applies when there is no checkpoint yet: "new" (only events appended from
    now on), "beginning", a stream sequence, or a time. With ``durable`` set, call
    ``ack(delivery)`` once the event is handled; after a restart the subscription
    continues after the last acknowledged event, wherever ``start`` points.
    """

    def __init__(
        self,
        log: Log,
        *,
        namespace: str | None = None,
        name: str | None = None,
        start: StartAt = "new",
        durable: str | None = None,
        on_skipped: SkipHandler = report_skipped,
        heartbeat: float = 1.0,
    ) -> None:
        for what, value in (("namespace", namespace), ("name", name), ("subscription", durable)):
            if value is not None:
                try:
                    check_name(value)
                except ValueError as exc:
                    raise InvalidInput(what, value, str(exc)) from None
        self._log = log
        self.filter = filter_for(namespace, name)
        self._start = _start(start)
        self.durable = durable
        self._on_skipped = on_skipped
        self._heartbeat = heartbeat
        self._resources = contextlib.AsyncExitStack()
        self._tail: Reader | None = None
        self._store: Checkpoints | None = None
        self._revision = 0
        self.acked = 0  # last sequence acknowledged (durable) or 0
        self._known: dict[str, ServiceRecord] = {}

    async def open(self) -> Subscription:
        start = self._start
        store = None
        if self.durable is not None:
            store = self._store = await self._log.checkpoints()
            checkpoint = await store.load(self.durable)
            if checkpoint is not None:
                if checkpoint.filter_subject != self.filter:
                    raise InvalidInput(
                        "subscription",
                        self.durable,
                        f"it follows {checkpoint.filter_subject}, not {self.filter}",
                    )
                end = await self._log.last_sequence()
                if checkpoint.seq > end:
                    # Resuming there would skip every event up to it, silently.
                    raise ServerError(
                        f"subscription {self.durable!r}: its checkpoint says {checkpoint.seq}, "
                        f"past the end of the log ({end}); it was not written by this "
                        "subscriber: fix or delete it before resuming"
                    )
                self._revision, self.acked = checkpoint.revision, checkpoint.seq
                start = Start("seq", seq=checkpoint.seq + 1)
        self._tail = await self._resources.enter_async_context(
            self._log.read([self.filter], start, heartbeat=self._heartbeat)
        )
        if store is not None and self.durable is not None and start.policy == "new":
            # "From now on" must mean the same moment after a crash before the first ack,
            # so the starting point is recorded at once.
            self.acked = self._tail.last_seq
            self._revision = await store.save(self.durable, self.acked, self.filter, 0)
        return self

    async def close(self) -> None:
        await self._resources.aclose()

    async def __aenter__(self) -> Subscription:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Delivery:
        assert self._tail is not None, "open the subscription first (async with)"
        async for item in self._tail:
            if item is CAUGHT_UP:
                continue
            assert isinstance(item, StoredMessage)
            entry = read_entry(item)
            if isinstance(entry, Skipped):
                self._on_skipped(entry)
                continue
            return Delivery(item.seq, item.subject, item.time, entry.event, item.data)
        raise StopAsyncIteration

    async def ack(self, delivery: Delivery | Change | int) -> None:
        """Mark everything up to this event as handled, durably (for named subscriptions)."""
        seq = delivery if isinstance(delivery, int) else delivery.seq
        if self._store is None or self.durable is None or seq <= self.acked:
            return
        self._revision = await self._store.save(self.durable, seq, self.filter, self._revision)
        self.acked = seq

    async def changes(self) -> AsyncIterator[Change]:
        """The same events as ADDED / MODIFIED / DELETED changes carrying the service."""
        async for delivery in self:
            event = delivery.event
            match event:
                case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
                    record = ServiceRecord.from_event(delivery.seq, event, delivery.data)
                    self._known[delivery.subject] = record
                    kind: Literal["ADDED", "MODIFIED"] = (
                        "ADDED" if isinstance(event, ServiceCreated) else "MODIFIED"
                    )
                    yield Change(kind, delivery.seq, record, event)
                case ServiceDeleted() | ServiceForceDeleted():
                    gone = self._known.pop(delivery.subject, None)
                    if gone is None:
                        gone = await self._created_before(event.namespace, event.name, delivery.seq)
                    if gone is not None:
                        yield Change("DELETED", delivery.seq, gone, event)
                case _:
                    assert_never(event)

    async def _created_before(self, namespace: str, name: str, seq: int) -> ServiceRecord | None:
        """The create a delete undoes, when this subscription started after it."""
        past = Projection()
        async for record in read_log(self._log, subject_for(namespace, name), until_seq=seq - 1):
            if isinstance(record.entry, Entry):
                past.apply(record.entry)
        return past.services.get((namespace, name))
