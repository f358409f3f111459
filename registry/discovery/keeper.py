"""One announced task kept truthful: its health check run, readiness requests answered.

The ``Announcer`` keeps heartbeats going; a ``TaskKeeper`` decides what they say. It
runs the task's check every interval and, when the thresholds turn the result around,
announces the task's new readiness at once (not at the next renewal). It answers
``skyctl task ready|not-ready|drain`` on the task's control subject, replying only once
the changed heartbeat is stored. Leaving, it withdraws the task with the reason it was
given (a supervised program's exit status), which the membership history keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from events.codec import DecodeError
from events.control import (
    ReadinessAction,
    ReadinessReply,
    decode_request,
    encode_control,
)
from events.liveness import control_subject
from events.task import Task, as_reason
from registry.discovery.announce import Announcement, Announcer
from registry.discovery.checks import Check, Threshold, probe
from registry.discovery.readiness import Readiness
from registry.errors import PermissionDenied, RegistryError
from registry.log.liveness import Liveness

__all__ = ["TaskKeeper"]

log = logging.getLogger(__name__)


class TaskKeeper:
    """The task as it is announced now, and what keeps it so."""

    def __init__(
        self,
        announcer: Announcer,
        liveness: Liveness,
        task: Task,
        ttl: int,
        check: Check | None = None,
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.announcer = announcer
        self.liveness = liveness
        self.ttl = ttl
        self.check = check
        self.on_error = on_error or (lambda text: log.warning("%s", text))
        threshold = None if check is None else Threshold(check.fail_after, check.pass_after)
        self.readiness = Readiness.announced(task.ready, threshold, str(check or ""))
        self._task = task
        self.announcement: Announcement | None = None
        self.checks = 0  # probes run, for those who measure
        self.leaving: str | None = None  # why it will be withdrawn (said in the withdrawal)
        self._changing = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._stop_serving: Callable[[], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        task = self.task
        state = "draining" if task.draining else "ready" if task.ready else "not ready"
        return f"TaskKeeper({task.namespace}/{task.name}, ttl={self.ttl}, {state})"

    @property
    def task(self) -> Task:
        """The task as its heartbeat says now."""
        return self.announcement.task if self.announcement is not None else self._wanted()

    def _wanted(self) -> Task:
        verdict = self.readiness.verdict()
        update = {"ready": verdict.ready, "draining": verdict.draining, "reason": verdict.reason}
        return self._task.model_copy(update=update)

    async def start(self) -> None:
        """Check once (a task is announced as its first check finds it), announce, then
        keep checking and answering."""
        if self.check is not None:
            self.readiness.checked(await probe(self.check))
            self.checks += 1
        (self.announcement,) = await self.announcer.announce([self._wanted()], self.ttl)
        subject = control_subject(self._task.namespace, self._task.name)
        try:
            self._stop_serving = await self.liveness.serve(subject, self._answer)
        except PermissionDenied as exc:
            self.on_error(f"readiness requests cannot reach task/{self._task.name}: {exc}")
        if self.check is not None:
            self._loop = asyncio.create_task(self._checking(self.check))

    async def stop(self, reason: str | None = None) -> None:
        """Stop checking and answering, and withdraw the task saying ``reason``."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._stop_serving is not None:
            await self._stop_serving()
            self._stop_serving = None
        if self.announcement is not None and not self.announcement.withdrawn:
            self.announcement.reason = reason
            await self.announcer.withdraw([self.announcement])

    async def request(
        self, action: ReadinessAction, reason: str | None = None, by: str | None = None
    ) -> Task:
        """Set the task's readiness by hand (what ``skyctl task drain`` asks for, here in
        the announcing program); the task as announced once stored."""
        self.readiness.request(action, reason, by)
        await self._announce_change()
        return self.task

    async def _announce_change(self) -> None:
        async with self._changing:  # the newest verdict wins, whoever asked first
            if self.announcement is not None:
                await self.announcer.change(self.announcement, self._wanted())

    async def _checking(self, check: Check) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += check.interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            result = await probe(check)
            self.checks += 1
            if not self.readiness.checked(result):
                continue
            try:
                await self._announce_change()
            except Exception as exc:  # the renewals carry the new verdict meanwhile
                if not isinstance(exc, RegistryError | OSError):
                    log.debug("announcing a check's result failed", exc_info=True)
                self.on_error(f"task/{self._task.name}: announcing its check result: {exc}")
            due = max(due, loop.time())  # a slow probe does not make the next ones pile up

    async def _answer(self, data: bytes) -> bytes:
        """A readiness request's reply: the task as announced, or why not."""
        instance = self.announcement.instance if self.announcement else None
        try:
            request = decode_request(data)
        except DecodeError as exc:
            return encode_control(ReadinessReply(instance=instance, error=_line(str(exc))))
        try:
            task = await self.request(request.action, request.reason, request.by)
        except Exception as exc:
            return encode_control(ReadinessReply(instance=instance, error=_line(str(exc))))
        return encode_control(ReadinessReply(instance=instance, task=task))


def _line(text: str) -> str:
    """An error as the reply's ``error`` carries it (a non-empty ``Reason``)."""
    return as_reason(text).strip() or "failed"
