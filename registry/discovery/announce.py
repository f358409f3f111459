"""Keeping tasks announced: a heartbeat per task at a third of its TTL, until withdrawn.

One ``Announcer`` keeps any number of tasks live over one connection (a program running
one task, or an agent running thousands). Each task's heartbeat is encoded once and sent
again, byte for byte, every ``ttl / 3`` seconds, so two renewals can be lost before the
server forgets it. Tasks due together go out as one round confirmed by one
acknowledgement (``Liveness.publish``). A round that fails (the server restarting, a
leader election) is retried every half second; after a reconnect every task is renewed
at once, because its heartbeats may have expired while the server was away.

The announcer never decides that a task is dead: if it stops (SIGKILL, a crash), the
server removes the task when its last heartbeat's TTL runs out. Withdrawing (Ctrl-C,
SIGTERM, leaving ``Registry.announce``) replaces each heartbeat with a ``TaskWithdrawn``
that readers take as "gone" at once; it expires a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from events.liveness import MAX_TTL_S, MIN_TTL_S, task_subjects
from events.stamps import new_event_id, utc_now
from events.task import Task, TaskHeartbeat, TaskWithdrawn, encode_task_message
from registry.errors import InvalidInput, RegistryError
from registry.log.liveness import ExpiringMessage, Liveness

__all__ = ["Announcement", "Announcer", "check_ttl", "task_from"]

log = logging.getLogger(__name__)

RENEWALS_PER_TTL = 3
_RETRY_S = 0.5  # after a round that was not confirmed
_ROUND = 2_000  # messages per confirmed round
_SLACK_S = 0.05  # renewals due this soon go out with the current round
_WITHDRAWN_TTL = 1


def check_ttl(ttl: object) -> int:
    """A TTL in whole seconds, as the server takes it (``Nats-TTL``)."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL_S <= ttl <= MAX_TTL_S:
        raise InvalidInput(
            "ttl", str(ttl), f"must be a whole number of seconds from {MIN_TTL_S} to {MAX_TTL_S}"
        )
    return ttl


def task_from(task: Task | Mapping[str, Any]) -> Task:
    """A task from its model or a plain mapping, checked (InvalidInput names the field)."""
    if isinstance(task, Task):
        return task
    try:
        return Task.model_validate(dict(task))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "task"
        shown = first.get("input")
        raise InvalidInput(
            f"task {where}", shown if isinstance(shown, str) else repr(shown), first["msg"]
        ) from None


class Announcement:
    """One task kept announced by an ``Announcer``."""

    def __init__(self, task: Task, ttl: int) -> None:
        self.task = task
        self.ttl = ttl
        self.instance = new_event_id()
        self.since: datetime = utc_now()
        self.subjects = tuple(task_subjects(task.namespace, task.name, task.labels))
        self.data = self._encode()
        self.due = 0.0  # event-loop time of the next renewal
        self.withdrawn = False
        self.renewals = 0
        self.reason: str | None = None  # why it is withdrawn, said in the withdrawal

    @property
    def interval(self) -> float:
        """Seconds between renewals."""
        return self.ttl / RENEWALS_PER_TTL

    def _encode(self) -> bytes:
        beat = TaskHeartbeat(instance=self.instance, since=self.since, task=self.task)
        return encode_task_message(beat)

    def heartbeats(self) -> list[ExpiringMessage]:
        return [ExpiringMessage(subject, self.data, self.ttl) for subject in self.subjects]

    def withdrawals(self) -> list[ExpiringMessage]:
        gone = TaskWithdrawn(
            instance=self.instance,
            namespace=self.task.namespace,
            name=self.task.name,
            reason=self.reason,
        )
        data = encode_task_message(gone)
        return [ExpiringMessage(subject, data, _WITHDRAWN_TTL) for subject in self.subjects]

    def __repr__(self) -> str:
        return f"Announcement({self.task.namespace}/{self.task.name}, ttl={self.ttl})"


class Announcer:
    """Renews the heartbeats of every task it announced, until each is withdrawn."""

    def __init__(
        self, liveness: Liveness, *, on_error: Callable[[str], None] | None = None
    ) -> None:
        self.liveness = liveness
        self.on_error = on_error or (lambda text: log.warning("%s", text))
        self._due: list[tuple[float, int, Announcement]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] = lambda: None
        self._live: set[Announcement] = set()
        # One round at a time: a renewal carrying a heartbeat's old bytes must not land
        # after the change that replaced them (a task would flap back on one subject).
        self._sending = asyncio.Lock()
        self.rounds = 0  # confirmed rounds, for those who measure
        self.sent = 0  # heartbeats in them
        self.failures = 0

    def start(self) -> Announcer:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
            self._unlisten = self.liveness.on_reconnect(self.renew_all)
        return self

    async def close(self) -> None:
        """Stop renewing (the tasks then expire on the server); withdraw nothing."""
        self._unlisten()
        self._unlisten = lambda: None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def announced(self) -> int:
        return len(self._live)

    async def announce(self, tasks: Iterable[Task], ttl: int) -> list[Announcement]:
        """Announce each task now (confirmed by the server, or an error) and keep it so."""
        check_ttl(ttl)
        made = [Announcement(task, ttl) for task in tasks]
        try:
            for chunk in _chunks(made):
                await self.liveness.publish([m for a in chunk for m in a.heartbeats()])
        except BaseException:
            # Heartbeats sent but not confirmed (Ctrl-C, no answer) may be stored all the
            # same: withdraw them, or a task stopped while joining stays live for its TTL.
            withdrawing = asyncio.ensure_future(self.withdraw(made))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(withdrawing)
            raise
        loop = asyncio.get_running_loop()
        now = loop.time()
        for announcement in made:
            # The first renewal comes a little early, at a random point: tasks announced
            # together do not renew together forever after.
            self._schedule(announcement, now + announcement.interval * random.uniform(0.2, 1.0))
            self._live.add(announcement)
        self.start()
        return made

    async def change(self, announcement: Announcement, task: Task) -> None:
        """Announce ``task`` (the same task, its readiness changed) in place of the one
        announced, now, confirmed; renewals carry it from then on."""
        if announcement.withdrawn or task == announcement.task:
            return
        before = announcement.task
        if (task.namespace, task.name, task.labels) != (
            before.namespace,
            before.name,
            before.labels,
        ):
            raise InvalidInput("task", task.name, "only a task's readiness changes in place")
        async with self._sending:
            announcement.task = task
            announcement.data = announcement._encode()
            await self.liveness.publish(announcement.heartbeats())

    async def withdraw(
        self, announcements: Sequence[Announcement], *, timeout: float = 2.0
    ) -> None:
        """Stop renewing them and tell readers they are gone (at once, not at their TTL)."""
        for announcement in announcements:
            announcement.withdrawn = True
            self._live.discard(announcement)
        for chunk in _chunks(list(announcements)):
            async with self._sending:
                await self.liveness.publish(
                    [m for a in chunk for m in a.withdrawals()], timeout=timeout
                )

    def renew_all(self) -> None:
        """Renew every task at once (after a reconnect)."""
        now = asyncio.get_running_loop().time()
        for announcement in self._live:
            self._schedule(announcement, now)

    # -- the renewal loop ----------------------------------------------------------------

    def _schedule(self, announcement: Announcement, due: float) -> None:
        announcement.due = due
        heapq.heappush(self._due, (due, next(self._order), announcement))
        self._wake.set()

    def _take_due(self, now: float) -> list[Announcement]:
        taken: dict[int, Announcement] = {}
        while self._due and self._due[0][0] <= now + _SLACK_S:
            due, _, announcement = heapq.heappop(self._due)
            # Entries left behind by a reschedule, or by a withdrawal, are stale.
            if due == announcement.due and not announcement.withdrawn:
                taken[id(announcement)] = announcement
        return list(taken.values())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = loop.time()
            due = self._take_due(now)
            if not due:
                wait = self._due[0][0] - now if self._due else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # (not wait_for: see pyproject)
                        await self._wake.wait()
                continue
            for chunk in _chunks(due):
                await self._renew(chunk)

    async def _renew(self, chunk: list[Announcement]) -> None:
        now = asyncio.get_running_loop().time()
        try:
            async with self._sending:
                messages = [m for a in chunk if not a.withdrawn for m in a.heartbeats()]
                if messages:
                    await self.liveness.publish(messages)
        except Exception as exc:  # whatever the client raises, the loop must go on
            if not isinstance(exc, RegistryError | OSError):
                log.debug("renewal failed", exc_info=True)
            self.failures += 1
            self.on_error(f"renewing {len(chunk)} task(s) failed, retrying: {exc}")
            for announcement in chunk:
                if not announcement.withdrawn:
                    self._schedule(announcement, now + _RETRY_S)
            return
        self.rounds += 1
        self.sent += len(messages)
        for announcement in chunk:
            if not announcement.withdrawn:
                announcement.renewals += 1
                self._schedule(announcement, now + announcement.interval)


def _chunks(announcements: list[Announcement]) -> Iterable[list[Announcement]]:
    """Rounds of about ``_ROUND`` messages."""
    chunk: list[Announcement] = []
    size = 0
    for announcement in announcements:
        chunk.append(announcement)
        size += len(announcement.subjects)
        if size >= _ROUND:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
