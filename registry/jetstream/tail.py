"""Reading the log in order, with no gap and no duplicate, for as long as you like.

nats-py's ordered consumer can lose messages silently when the client falls behind (its
sequence tracker advances before a slow-consumer drop; nats.go#2107 had the same defect),
and the registry's readers must notice gaps instead of skipping them. So this is a push
consumer driven by hand, over either client: client-side queues are unbounded, the
consumer sequence of every message is checked, heartbeats prove the consumer is alive,
flow control is answered only when the reader has caught up (real back-pressure), and on
any doubt (gap, silence, reconnect) the consumer is re-created after the last stream
sequence handed to the reader. On a connection that does not reconnect, a read that
stops making progress fails instead of waiting forever.

A read of the liveness stream (``restart=True``) cannot resume that way: its messages
expire, and so do the markers that say so, so whatever may have been missed is replaced
by reading the current state again (``RESTARTED``, the last message of each subject,
``CAUGHT_UP``), the way a reader that starts late must.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from events.stamps import format_time
from registry.errors import ReadSlotsBusy, ServerError
from registry.jetstream.connection import ConnectionLost, Subscription
from registry.jetstream.protocol import ApiError
from registry.jetstream.session import Session
from registry.jetstream.slots import read_slots
from registry.log.reader import CAUGHT_UP, FROM_THE_START, RESTARTED, Item, Start
from registry.log.stored import StoredMessage

__all__ = ["Tail", "ack_tokens"]

log = logging.getLogger(__name__)

_NONE: Final[Mapping[str, str]] = MappingProxyType({})
_HIGH_WATER: Final = 20_000  # hold flow-control replies while this many wait unread
_LOW_WATER: Final = 2_000
_BUSY_WAIT_S: Final = 1.0  # how long a read waits for one of its user's names to free
_NAME_IN_USE: Final = 10148  # "consumer already exists" (with another configuration)
_POLICIES: Final = {
    "all": "all",
    "last_per_subject": "last_per_subject",
    "new": "new",
    "seq": "by_start_sequence",
    "time": "by_start_time",
}


def ack_tokens(reply: str) -> tuple[int, int, int, int]:
    """``(stream seq, consumer seq, time ns, pending)`` from a JetStream ack subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>``, or the v2
    form with a domain and an account hash after ``ACK``. ValueError if it is neither.
    """
    tokens = reply.split(".")
    if len(tokens) == 9:
        base = 2
    elif len(tokens) >= 11:
        base = 4
    else:
        raise ValueError(f"not an ack subject: {reply[:80]!r}")
    return (
        int(tokens[base + 3]),
        int(tokens[base + 4]),
        int(tokens[base + 5]),
        int(tokens[base + 6]),
    )


class Tail:
    """An ordered read of the stream's messages matching ``filters``, from ``start``."""

    def __init__(
        self,
        session: Session,
        stream: str,
        filters: Sequence[str],
        start: Start = FROM_THE_START,
        *,
        heartbeat: float = 1.0,
        restart: bool = False,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._session = session
        self._before = before  # what must be done before the first read (a stream check)
        self._conn = session.conn
        self._stream = stream
        self._filters = list(filters)
        self._start = start
        self._heartbeat = heartbeat
        self._restart = restart  # after a reset, read the current state again
        self._kick = asyncio.Event()  # a reconnect: retry a pending re-create at once
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
        self._background: set[asyncio.Task[Any]] = set()
        self.resets = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def last_heard(self) -> float:
        """Event-loop time of the last message or heartbeat the server sent this read."""
        return self._activity

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> Tail:
        if self._before is not None:
            await self._before()
        await self._subscribe()
        self._watchdog = asyncio.create_task(self._watch_activity())
        self._unlisten = self._conn.on_reconnect(lambda: self._request_reset("reconnected"))
        return self

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unlisten()
        for task in (self._watchdog, self._reset_task, *self._background):
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
        self._items.extendleft(reversed(items))
        if items:
            self._wake.set()

    # -- consumer management -----------------------------------------------------------

    def _consumer_config(self, inbox: str) -> dict[str, Any]:
        start = self._start
        if self._last_seq and not self._restart:
            start = Start("seq", seq=self._last_seq + 1)
        config: dict[str, Any] = {
            "deliver_subject": inbox,
            "ack_policy": "none",
            "deliver_policy": _POLICIES[start.policy],
            "flow_control": True,
            "idle_heartbeat": int(self._heartbeat * 1e9),
            "mem_storage": True,
            "num_replicas": 1,
            # (At most what the registry's streams allow any consumer.)
            "inactive_threshold": int(min(max(10.0, 5 * self._heartbeat), 300.0) * 1e9),
        }
        if start.policy == "seq":
            config["opt_start_seq"] = start.seq
        if start.policy == "time" and start.time is not None:
            config["opt_start_time"] = format_time(start.time)
        if len(self._filters) == 1:
            config["filter_subject"] = self._filters[0]
        else:
            config["filter_subjects"] = self._filters
        return config

    async def _subscribe(self) -> None:
        generation = self._generation
        inbox = self._conn.new_inbox()

        def on_msg(
            subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes
        ) -> None:
            if generation == self._generation:
                self._on_msg(subject, reply, headers, data)

        sub = await self._conn.subscribe(inbox, on_msg)
        # The consumer pushes from the moment it exists, and its first deliveries can be
        # handled before the answer to its creation: count them from here, or they are
        # checked against the last consumer's sequence and dropped as a gap.
        self._next_cseq = 1
        try:
            info = await self._create_consumer(self._consumer_config(inbox))
            name = info.get("name")
            if not isinstance(name, str):
                raise ServerError("the server's consumer has no name")
        except BaseException:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            raise
        self._sub, self._consumer = sub, name
        self._activity = asyncio.get_running_loop().time()
        delivered = info.get("delivered")
        if self._start.policy == "new" and not self._last_seq and isinstance(delivered, dict):
            # "From now on" means after what the stream held when the consumer was
            # made; remembering it lets a reset resume there rather than at a later now.
            stream_seq = delivered.get("stream_seq")
            if isinstance(stream_seq, int):
                self._last_seq = stream_seq
        if not self._caught_up and self._next_cseq == 1 and not info.get("num_pending"):
            # Nothing to deliver. (Once deliveries have arrived, their own pending counts
            # say when the read is caught up; the answer may be older or newer than them.)
            self._deliver_caught_up()

    async def _create_consumer(self, config: dict[str, Any]) -> dict[str, Any]:
        """Create the consumer: named by the server, or in one of this user's read slots
        (``registry.jetstream.slots``), tried in random order so that a user's readers
        seldom ask for the same one; "create" refuses a name already in use."""
        stream, operation = self._stream, f"read {', '.join(self._filters)}"
        await self._session.identify()  # a user's read slots are named for it
        slots = read_slots(stream, self._session.permissions)
        if slots is None:
            return await self._session.api(
                f"$JS.API.CONSUMER.CREATE.{stream}",
                {"stream_name": stream, "config": config},
                operation,
            )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _BUSY_WAIT_S
        while True:
            for name in random.sample(slots, len(slots)):
                try:
                    return await self._session.api(
                        f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
                        {
                            "stream_name": stream,
                            "config": {**config, "name": name},
                            "action": "create",
                        },
                        operation,
                    )
                except ApiError as exc:
                    if exc.err_code != _NAME_IN_USE:
                        raise
            # A read that just ended deletes its consumer without waiting for the answer
            # (a round trip saved on every read): give such a delete a moment to land.
            if not slots or loop.time() > give_up:
                raise ReadSlotsBusy(self._session.user, stream, len(slots))
            await asyncio.sleep(0.05)

    async def _drop_consumer(self) -> None:
        sub, consumer = self._sub, self._consumer
        self._sub = self._consumer = None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if consumer is not None and not self._conn.is_closed:
            stream = self._stream
            with contextlib.suppress(Exception):
                await self._conn.publish(f"$JS.API.CONSUMER.DELETE.{stream}.{consumer}")

    def _request_reset(self, reason: str) -> None:
        if self._closed:
            return
        if self._reset_task is not None and not self._reset_task.done():
            if reason == "reconnected":
                self._kick.set()  # the server is back: do not wait out the back-off
            return
        log.info(
            "tail on %s: re-creating consumer after seq %d (%s)",
            self._filters,
            self._last_seq,
            reason,
        )
        self._generation += 1  # messages still arriving for the old consumer are ignored
        if self._restart:
            # What was handed over stays valid until the state read again replaces it.
            self._last_seq = 0
            self._caught_up = False
            self._items.append(RESTARTED)
            self._wake.set()
        self._reset_task = asyncio.create_task(self._reset())

    async def _reset(self) -> None:
        self.resets += 1
        self._held_flow_control.clear()
        await self._drop_consumer()
        delay = 0.1
        loop = asyncio.get_running_loop()
        give_up = None if self._conn.reconnects else loop.time() + max(self._session.timeout, 3.0)
        while not self._closed:
            try:
                await self._subscribe()
                return
            except (ServerError, TimeoutError, ConnectionLost, OSError) as exc:
                if self._conn.is_closed or (give_up is not None and loop.time() > give_up):
                    self._fail(ServerError(f"reading the log from {self._conn.url} failed: {exc}"))
                    return
                log.info("tail: consumer re-create failed (%r); retrying", exc)
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # (not wait_for: see pyproject)
                    await self._kick.wait()
            delay = min(delay * 2, 2.0)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._wake.set()

    async def _watch_activity(self) -> None:
        """Heartbeats arrive every ``heartbeat`` s; three missed means the consumer is gone."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._heartbeat)
            if self._conn.is_closed:
                self._fail(ServerError(f"the connection to {self._conn.url} closed"))
                return
            resetting = self._reset_task is not None and not self._reset_task.done()
            if not resetting and loop.time() - self._activity > 3 * self._heartbeat:
                self._request_reset("no heartbeat")

    # -- message handling (runs in the connection's reading task) ------------------------

    def _on_msg(
        self, subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes
    ) -> None:
        self._activity = asyncio.get_running_loop().time()
        if not data and headers is not None and headers.get("Status") == "100":
            self._on_control(reply, headers)
            return
        try:
            sseq, cseq, time_ns, pending = ack_tokens(reply)
        except ValueError:
            self._request_reset(f"a message without a JetStream ack subject on {subject}")
            return
        if cseq != self._next_cseq:
            self._request_reset(f"consumer sequence {cseq}, expected {self._next_cseq}")
            return
        self._next_cseq = cseq + 1
        if sseq <= self._last_seq:
            return  # already handed over before a reset
        self._last_seq = sseq
        # (Not ``headers or {}``: that would parse the wire client's lazy headers.)
        stored = StoredMessage(sseq, subject, data, _NONE if headers is None else headers, time_ns)
        self._items.append(stored)
        if not self._caught_up and pending == 0:
            self._deliver_caught_up()
        self._wake.set()

    def _on_control(self, reply: str, headers: Mapping[str, str]) -> None:
        if headers.get("Description", "").startswith("FlowControl"):
            if reply:
                if len(self._items) > _HIGH_WATER:
                    self._held_flow_control.append(reply)
                else:
                    self._answer(reply)
            return
        # Idle heartbeat: it names the last consumer sequence the server sent.
        stalled = headers.get("Nats-Consumer-Stalled")
        if stalled and len(self._items) <= _HIGH_WATER:
            self._answer(stalled)
        last_sent = headers.get("Nats-Last-Consumer")
        if last_sent is not None and last_sent != str(self._next_cseq - 1):
            self._request_reset(f"heartbeat says {last_sent} sent, got {self._next_cseq - 1}")

    def _deliver_caught_up(self) -> None:
        self._caught_up = True
        self._items.append(CAUGHT_UP)
        self._wake.set()

    def _release_flow_control(self) -> None:
        if self._held_flow_control and len(self._items) < _LOW_WATER:
            replies, self._held_flow_control = self._held_flow_control, []
            for reply in replies:
                self._answer(reply)

    def _answer(self, subject: str) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_quietly(subject))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_quietly(self, subject: str) -> None:
        with contextlib.suppress(ConnectionLost):
            await self._conn.publish(subject)
