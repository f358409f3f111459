"""Reading the log in order, with no gap and no duplicate, for as long as you like.

nats-py's ordered consumer can lose messages silently when the client falls behind
(its sequence tracker advances before a slow-consumer drop; see notes on nats.go#2107),
and the registry's readers must notice gaps instead of skipping them. So this is a
push consumer driven by hand: client-side queues are unbounded, the consumer sequence
of every message is checked, heartbeats prove the consumer is alive, flow control is
answered only when the reader has caught up (real back-pressure), and on any doubt
(gap, silence, reconnect) the consumer is re-created after the last stream sequence
handed to the reader. Everything the reader receives is exactly the stream, filtered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from registry.entry import StoredMessage
from registry.jetstream.connection import JetStreamLog

__all__ = ["CAUGHT_UP", "CaughtUp", "Start", "Tail"]

log = logging.getLogger(__name__)

_HIGH_WATER: Final = 20_000  # hold flow-control replies while this many wait unread
_LOW_WATER: Final = 2_000


@dataclass(frozen=True, slots=True)
class Start:
    """Where reading begins."""

    policy: Literal["all", "last_per_subject", "new", "seq", "time"] = "all"
    seq: int | None = None
    time: datetime | None = None


class CaughtUp:
    """Marker handed to the reader once, when everything stored at start was delivered."""

    def __repr__(self) -> str:
        return "CAUGHT_UP"


CAUGHT_UP: Final = CaughtUp()

Item = StoredMessage | CaughtUp


class Tail:
    """An async iterator over the stream's messages matching ``filters``, from ``start``."""

    def __init__(
        self,
        log: JetStreamLog,
        filters: Sequence[str],
        start: Start = Start(),
        *,
        heartbeat: float = 1.0,
    ) -> None:
        self._log = log
        self._filters = list(filters)
        self._start = start
        self._heartbeat = heartbeat
        self._items: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._last_seq = 0  # stream sequence of the last message handed to the reader
        self._next_cseq = 1
        self._caught_up = False
        self._generation = 0
        self._sub: Subscription | None = None
        self._consumer: str | None = None
        self._held_flow_control: list[str] = []
        self._activity = 0.0
        self._reset_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] = lambda: None
        self._closed = False
        self._error: BaseException | None = None
        self.resets = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> Tail:
        await self._subscribe()
        self._watchdog = asyncio.create_task(self._watch_activity())
        self._unlisten = self._log.on_reconnect(lambda: self._request_reset("reconnected"))
        return self

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unlisten()
        for task in (self._watchdog, self._reset_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._drop_consumer()
        self._wake.set()

    async def __aenter__(self) -> Tail:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading ---------------------------------------------------------------------

    def __aiter__(self) -> Tail:
        return self

    async def __anext__(self) -> Item:
        """One item at a time; any number of loops may take turns on the same tail."""
        while not self._items:
            await self._wait()
        item = self._items.popleft()
        self._release_flow_control()
        return item

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StopAsyncIteration
        self._wake.clear()
        await self._wake.wait()

    async def next_batch(self) -> list[Item]:
        """Everything delivered so far (waiting for at least one item); [] once closed."""
        while not self._items:
            try:
                await self._wait()
            except StopAsyncIteration:
                return []
        batch = list(self._items)
        self._items.clear()
        self._release_flow_control()
        return batch

    def push_back(self, items: Sequence[Item]) -> None:
        """Return unread items to the front, for a reader that took more than it used."""
        self._items.extendleft(reversed(items))
        if items:
            self._wake.set()

    # -- consumer management -----------------------------------------------------------

    def _consumer_config(self, inbox: str) -> ConsumerConfig:
        start = self._start
        if self._last_seq:
            start = Start("seq", seq=self._last_seq + 1)
        policy = {
            "all": DeliverPolicy.ALL,
            "last_per_subject": DeliverPolicy.LAST_PER_SUBJECT,
            "new": DeliverPolicy.NEW,
            "seq": DeliverPolicy.BY_START_SEQUENCE,
            "time": DeliverPolicy.BY_START_TIME,
        }[start.policy]
        config = ConsumerConfig(
            deliver_subject=inbox,
            ack_policy=AckPolicy.NONE,
            deliver_policy=policy,
            opt_start_seq=start.seq if start.policy == "seq" else None,
            opt_start_time=start.time if start.policy == "time" else None,
            flow_control=True,
            idle_heartbeat=self._heartbeat,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=max(10.0, 5 * self._heartbeat),
        )
        if len(self._filters) == 1:
            config.filter_subject = self._filters[0]
        else:
            config.filter_subjects = self._filters
        return config

    async def _subscribe(self) -> None:
        nc, js = self._log.nc, self._log.js
        generation = self._generation
        inbox = nc.new_inbox()

        async def on_msg(msg: Msg) -> None:
            if generation == self._generation:
                await self._on_msg(msg)

        # Unlimited client-side queues: nats-py must never drop; back-pressure comes
        # from holding flow-control replies instead.
        sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        try:
            info = await self._log.guarded(
                js.add_consumer(self._log.spec.name, self._consumer_config(inbox)),
                f"read {', '.join(self._filters)}",
                "$JS.API.CONSUMER.",
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            raise
        self._sub, self._consumer = sub, info.name
        self._next_cseq = 1
        self._activity = asyncio.get_running_loop().time()
        if self._start.policy == "new" and not self._last_seq and info.delivered:
            # "From now on" means after what the stream held when the consumer was
            # made; remembering it lets a reset resume there rather than at a later now.
            self._last_seq = int(info.delivered.stream_seq or 0)
        if not self._caught_up and not info.num_pending:
            self._deliver_caught_up()

    async def _drop_consumer(self) -> None:
        sub, consumer = self._sub, self._consumer
        self._sub = self._consumer = None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if consumer is not None and self._log.nc.is_connected:
            with contextlib.suppress(Exception):
                await self._log.js.delete_consumer(self._log.spec.name, consumer)

    def _request_reset(self, reason: str) -> None:
        if self._closed or (self._reset_task is not None and not self._reset_task.done()):
            return
        log.info(
            "tail on %s: re-creating consumer after seq %d (%s)",
            self._filters,
            self._last_seq,
            reason,
        )
        self._generation += 1  # messages still arriving for the old consumer are ignored
        self._reset_task = asyncio.create_task(self._reset())

    async def _reset(self) -> None:
        self.resets += 1
        self._held_flow_control.clear()
        await self._drop_consumer()
        delay = 0.1
        while not self._closed:
            try:
                await self._subscribe()
                return
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                log.info("tail: consumer re-create failed (%r); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _watch_activity(self) -> None:
        """Heartbeats arrive every ``heartbeat`` s; three missed means the consumer is gone."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._heartbeat)
            resetting = self._reset_task is not None and not self._reset_task.done()
            if not resetting and loop.time() - self._activity > 3 * self._heartbeat:
                self._request_reset("no heartbeat")

    # -- message handling (runs in nats-py's subscription task) ------------------------

    async def _on_msg(self, msg: Msg) -> None:
        self._activity = asyncio.get_running_loop().time()
        headers = msg.headers
        if not msg.data and headers and headers.get("Status") == "100":
            await self._on_control(msg, headers)
            return
        reply = msg.reply
        tokens = reply.split(".")
        base = 2 if len(tokens) == 9 else 4  # v1 ack subject, or v2 with domain+account
        cseq = int(tokens[base + 4])
        if cseq != self._next_cseq:
            self._request_reset(f"consumer sequence {cseq}, expected {self._next_cseq}")
            return
        self._next_cseq = cseq + 1
        sseq = int(tokens[base + 3])
        if sseq <= self._last_seq:
            return  # already handed over before a reset
        self._last_seq = sseq
        self._items.append(
            StoredMessage(sseq, msg.subject, msg.data, headers or {}, int(tokens[base + 5]))
        )
        if not self._caught_up and tokens[base + 6] == "0":
            self._deliver_caught_up()
        self._wake.set()

    async def _on_control(self, msg: Msg, headers: dict[str, str]) -> None:
        description = headers.get("Description", "")
        if description.startswith("FlowControl"):
            if msg.reply:
                if len(self._items) > _HIGH_WATER:
                    self._held_flow_control.append(msg.reply)
                else:
                    await self._log.nc.publish(msg.reply)
            return
        # Idle heartbeat: it names the last consumer sequence the server sent.
        stalled = headers.get("Nats-Consumer-Stalled")
        if stalled and len(self._items) <= _HIGH_WATER:
            await self._log.nc.publish(stalled)
        last_sent = headers.get("Nats-Last-Consumer")
        if last_sent is not None and int(last_sent) != self._next_cseq - 1:
            self._request_reset(f"heartbeat says {last_sent} sent, got {self._next_cseq - 1}")

    def _deliver_caught_up(self) -> None:
        self._caught_up = True
        self._items.append(CAUGHT_UP)
        self._wake.set()

    def _release_flow_control(self) -> None:
        if self._held_flow_control and len(self._items) < _LOW_WATER:
            replies, self._held_flow_control = self._held_flow_control, []
            for reply in replies:
                asyncio.get_running_loop().create_task(self._publish_quietly(reply))

    async def _publish_quietly(self, subject: str) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._log.nc.publish(subject)
