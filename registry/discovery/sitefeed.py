"""A hub's sites for a long-running reader (the Resolver behind ``skyctl dns --sites`` and
``skyctl proxy --sites``): each site's tasks followed, its lease read.

A one-shot read of a site (``Registry.site_tasks``) asks the hub's copy of the site's
membership history for each task's last transition: fine for a command, but a Resolver
asking it every second pays for every task of every site each second, and hears of a
change up to a second late. Here each site's copy is followed instead (the last transition
of each task, then every one stored after: ``MembershipLog.follow``) and folded as the
one-shot read folds it (``Members``), so a transition reaches the Resolver as it arrives
(``changed`` is set) and a read costs nothing but the leases. The leases are read again
unless read within the last half second (``leases``): they move with silence, which no
message announces, so a reader reads every second regardless.

A site whose follow cannot start or fails (a role that may not make consumers, a view
removed) is read the one-shot way until a later read starts its follow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from registry.discovery.crosssite import SiteTasks
from registry.discovery.endpoints import Selectable
from registry.discovery.membership import Members
from registry.log.membership import MembershipLog
from registry.log.reader import CaughtUp
from registry.log.stored import StoredMessage
from registry.services.projector import SkipHandler, report_skipped

__all__ = ["SiteFeed"]

log = logging.getLogger(__name__)

_TASKS = "skyflow.member.*.*"  # every task's subject (not the recorders' notes)
_CATCH_UP_S = 10.0  # a first read waits this long for a new follow to deliver the state now
_RETRY_S = 30.0  # after a follow failed, before trying one again (read each time meanwhile)
# A read within this long of the last read of the leases takes them as they were: a
# follow's news is then answered without the stream-info round trips (measured: 6.7 ms of
# the 8.5 ms a site's change took to reach the hub's Resolver, p50, before).
_LEASES_FRESH_S = 0.5


@dataclass
class _Followed:
    """One site's follow: its fold, and whether it has delivered the state now."""

    members: Members
    task: asyncio.Task[None] | None = None
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    failed_at: float | None = None  # event-loop time its follow ended


class SiteFeed:
    """The sites of a hub, for a Resolver (``Resolver(sites=feed)``)."""

    def __init__(
        self,
        leases: Callable[[], Awaitable[Sequence[SiteTasks]]],
        history: Callable[[str], Awaitable[MembershipLog]],
        read_once: Callable[[str], Awaitable[tuple[Selectable, ...]]],
        *,
        on_skipped: SkipHandler = report_skipped,
    ) -> None:
        self._leases = leases  # each site's lease, without its tasks
        self._history = history  # the hub's copy of a site's history
        self._read_once = read_once  # a site's live tasks, read the one-shot way
        self._on_skipped = on_skipped
        self._sites: dict[str, _Followed] = {}
        self._leases_read: tuple[float, Sequence[SiteTasks]] | None = None  # when, what
        self.changed = asyncio.Event()  # set when a follow hears of a transition

    async def read(self) -> list[SiteTasks]:
        """Each site: its lease now, and (unless revoked) the tasks it last reported."""
        found = []
        now = asyncio.get_running_loop().time()
        if self._leases_read is None or now - self._leases_read[0] >= _LEASES_FRESH_S:
            self._leases_read = (now, await self._leases())
        for lease in self._leases_read[1]:
            if lease.state == "revoked":
                found.append(lease)
                continue
            followed = self._sites.get(lease.site)
            now = asyncio.get_running_loop().time()
            if followed is None or (
                followed.failed_at is not None and now - followed.failed_at > _RETRY_S
            ):
                followed = self._start(lease.site)
            if not followed.caught_up.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_CATCH_UP_S):  # (not wait_for: see pyproject)
                        await followed.caught_up.wait()
            tasks: tuple[Selectable, ...]
            if followed.caught_up.is_set() and followed.failed_at is None:
                tasks = tuple(m.task for m in followed.members.live() if m.task is not None)
            else:
                tasks = await self._read_once(lease.site)
            found.append(replace(lease, tasks=tasks))
        return found

    def _start(self, site: str) -> _Followed:
        followed = _Followed(Members(self._on_skipped))
        followed.task = asyncio.create_task(self._follow(site, followed))
        old = self._sites.get(site)
        if old is not None and old.task is not None:
            old.task.cancel()
        self._sites[site] = followed
        return followed

    async def _follow(self, site: str, followed: _Followed) -> None:
        try:
            history = await self._history(site)
            reading = history.follow(_TASKS)
            async with contextlib.aclosing(reading):
                async for item in reading:
                    if isinstance(item, StoredMessage):
                        followed.members.load([item])
                        if followed.caught_up.is_set():
                            self.changed.set()
                    elif isinstance(item, CaughtUp):
                        followed.caught_up.set()
                        self.changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any: the one-shot read is still there
            log.warning("following site %s failed (read each time instead): %s", site, exc)
        followed.failed_at = asyncio.get_running_loop().time()
        followed.caught_up.set()  # (a waiting read goes on, the one-shot way)

    async def close(self) -> None:
        tasks = [f.task for f in self._sites.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._sites.clear()
