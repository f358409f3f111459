"""Resolving a service to live endpoints, for programs that send it traffic.

``await resolver.endpoints("shop/web")`` starts following the service (its selector and
ports from the log, its tasks from the liveness stream) and returns its endpoints once
they are read; from then on they are kept current in the background, and
``resolver.pick("shop/web", port=80)`` chooses a ready one without a round trip:
round-robin, or the less loaded of two when the caller knows the load.

While the server is unreachable the Resolver keeps serving the last endpoints it had, as
Eureka's clients serve their cached registry, and ``stale_for`` says for how long the
server has not confirmed them; when the server is back it reads the current state again
and replaces them in one step, so a caller never sees a half-read set.

``resolver.everything()`` follows every service and every task at once, for a reader that
answers for any name it is asked (the DNS server, ``registry.dns``), with the same
keeping and catching up.

With ``sites`` (``registry.resolver(sites=True)``), it also knows the other sites: each
site's lease and the tasks it last reported, read again as soon as the source says they
changed (``SiteFeed.changed``: at a hub, each site's history is followed) and every
``sites_every`` seconds regardless (a lease moves with silence); a plain ``SiteSource``
callable is read every ``sites_every`` seconds. A service with no ready endpoint of its
own then resolves to another site's by the rule of ``registry.discovery.crosssite`` (live
sites before stale ones, then by name; revoked sites never): ``answer()`` says which site
and, for a stale one, its age; ``pick()`` and ``everything()`` (so DNS and the proxy)
serve it. Off by default: a Resolver without ``sites`` serves its own server's endpoints
only, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

from events.names import check_name
from events.service import DEFAULT_NAMESPACE
from registry.discovery.balance import RoundRobin, two_choices
from registry.discovery.crosssite import Answer, SiteTasks, choose
from registry.discovery.endpoints import Endpoint, Endpoints
from registry.discovery.follower import (
    RESYNC_S,
    Discovered,
    EndpointsChanged,
    Follower,
    ServiceEndpoints,
    TasksChanged,
)
from registry.errors import InvalidInput, NoEndpoints, NotFound
from registry.log.port import Log
from registry.services.projection import ServiceKey
from registry.services.projector import SkipHandler, report_skipped

__all__ = [
    "Followed",
    "Resolver",
    "ServiceRef",
    "SiteFeed",
    "SiteSource",
    "service_key",
    "site_reads",
]

log = logging.getLogger(__name__)

ServiceRef = str | tuple[str, str]  # "shop/web", "web" (default namespace), ("shop", "web")
Followed = Discovered | EndpointsChanged | TasksChanged  # what everything() hands over
_RESTART_S = 1.0  # before following again after a read failed
SITES_EVERY_S = 1.0  # between reads of the sites (their leases change by the second)
SiteSource = Callable[[], Awaitable[Sequence[SiteTasks]]]  # Registry.site_tasks


class SiteFeed(Protocol):
    """Sites that say when they change (``registry.discovery.sitefeed.SiteFeed``): read
    again as soon as ``changed`` is set, and every ``sites_every`` seconds regardless (a
    lease moves with silence); closed with the Resolver."""

    changed: asyncio.Event

    async def read(self) -> Sequence[SiteTasks]: ...

    async def close(self) -> None: ...


async def site_reads(
    feed: SiteFeed, every: float
) -> AsyncGenerator[Sequence[SiteTasks] | Exception, None]:
    """Each read of ``feed``: one at once, then one as soon as it says it changed, and one
    every ``every`` seconds regardless (a lease moves with silence); a read that failed is
    handed over as its exception, and reading goes on."""
    changed = feed.changed
    while True:
        changed.clear()  # (what changes during the read is read again at once)
        found: Sequence[SiteTasks] | Exception
        try:
            found = await feed.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # (a reconnect, a timeout: the reader says so)
            found = exc
        yield found
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):  # (not wait_for: see pyproject)
                await changed.wait()


class _Polled:
    """A ``SiteSource`` as a feed that never says it changed: read every ``sites_every``."""

    def __init__(self, source: SiteSource) -> None:
        self._source = source
        self.changed = asyncio.Event()

    async def read(self) -> Sequence[SiteTasks]:
        return await self._source()

    async def close(self) -> None:
        return None


def service_key(service: ServiceRef) -> ServiceKey:
    """``"shop/web"`` -> ``("shop", "web")``; a bare name is in the default namespace."""
    if isinstance(service, tuple):
        namespace, name = service
    else:
        namespace, slash, name = service.rpartition("/")
        namespace = namespace if slash else DEFAULT_NAMESPACE
    try:
        return check_name(namespace), check_name(name)
    except ValueError as exc:
        raise InvalidInput("service", str(service), str(exc)) from None


@dataclass
class _Followed:
    """One service the Resolver follows, and what it knows of it."""

    key: ServiceKey
    endpoints: Endpoints | None = None  # None: not live
    read: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None
    follower: Follower | None = None
    task: asyncio.Task[None] | None = None
    watchers: list[asyncio.Queue[Endpoints | None]] = field(default_factory=list)
    changes: int = 0

    def set(self, endpoints: Endpoints | None) -> None:
        if self.read.is_set() and endpoints == self.endpoints:
            return
        self.endpoints = endpoints
        self.changes += 1
        for queue in self.watchers:
            queue.put_nowait(endpoints)

    def failed(self, error: Exception) -> None:
        """Tell whoever waits for the first read (they raise it if nothing was known)."""
        self.error = error
        self.read.set()


class _Following(Protocol):
    """What a follow kept going across failures reports to: its current ``Follower``
    (for ``stale_for``) and each failure."""

    follower: Follower | None

    def failed(self, error: Exception) -> None: ...


@dataclass
class _Everything:
    """The follow of every service and task; its first failure is the caller's (nothing
    was known yet to keep), later ones are retried."""

    follower: Follower | None = None
    read: bool = False

    def failed(self, error: Exception) -> None:
        if not self.read:
            raise error


class Resolver:
    """Live endpoints of the services asked for, kept current from the server."""

    def __init__(
        self,
        log: Log,
        *,
        on_skipped: SkipHandler = report_skipped,
        resync: float = RESYNC_S,
        rng: random.Random | None = None,
        sites: SiteSource | SiteFeed | None = None,
        sites_every: float = SITES_EVERY_S,
    ) -> None:
        self.log = log
        self.on_skipped = on_skipped
        self.resync = resync
        self._rng = rng or random.Random()
        self._followed: dict[ServiceKey, _Followed] = {}
        self._everything: _Everything | None = None
        self._turns = RoundRobin()
        self._site_source: SiteFeed | None = _Polled(sites) if callable(sites) else sites
        self._sites_every = sites_every
        self._sites: tuple[SiteTasks, ...] = ()
        self._sites_read = asyncio.Event()
        self._sites_task: asyncio.Task[None] | None = None
        self._site_listeners: list[asyncio.Event] = []

    async def close(self) -> None:
        if self._sites_task is not None:
            self._sites_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sites_task
            self._sites_task = None
        if self._site_source is not None:
            await self._site_source.close()
        followed_now = list(self._followed.values())  # (a snapshot: see Follower.close)
        self._followed.clear()
        for followed in followed_now:
            if followed.task is not None:
                followed.task.cancel()
        for followed in followed_now:
            if followed.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await followed.task

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- asking ---------------------------------------------------------------------------

    async def endpoints(self, service: ServiceRef) -> Endpoints:
        """The service's endpoints: read on the first call, kept current after it.
        NotFound if the service is not live (it is still followed, and may appear)."""
        followed = await self._follow(service_key(service))
        if followed.endpoints is None:
            raise NotFound(*followed.key)
        return followed.endpoints

    def pick(
        self,
        service: ServiceRef,
        *,
        port: int | None = None,
        load: Callable[[Endpoint], float] | None = None,
    ) -> Endpoint:
        """A ready endpoint of the service for its port ``port`` (needed when it has more
        than one): the next in turn, or with ``load`` the less loaded of two at random.
        The service must have been asked for with ``endpoints`` first."""
        key = service_key(service)
        followed = self._followed.get(key)
        if followed is None or not followed.read.is_set():
            raise NoEndpoints(*key, "not resolved yet (await resolver.endpoints() first)")
        endpoints = followed.endpoints
        if endpoints is None:
            raise NoEndpoints(*key, "the service is not live")
        if self._site_source is not None and port in (None, *[p.port for p in endpoints.ports]):
            endpoints = choose(endpoints, self._sites, port).endpoints
        ports = [p.port for p in endpoints.ports]
        if port is None and len(ports) > 1:
            raise InvalidInput("port", "none", f"the service has several ports {ports}; name one")
        if port is not None and port not in ports:
            raise InvalidInput("port", str(port), f"the service's ports are {ports or 'none'}")
        candidates = endpoints.endpoints(port)
        if not candidates:
            raise NoEndpoints(*key, f"0 of {endpoints.total} endpoints are ready")
        if load is not None:
            return two_choices(candidates, load, self._rng)
        return self._turns.choose((key, port), candidates)

    async def answer(self, service: ServiceRef, port: int | None = None) -> Answer:
        """What the service resolves to: its own endpoints, or (with ``sites``, none of
        its own ready for ``port``) another site's by the cross-site rule, saying which
        site and, if stale, how long the hub has not heard from it. NotFound if the
        service is not live."""
        endpoints = await self.endpoints(service)
        if self._site_source is None:
            return Answer(endpoints)
        await self._start_sites()
        return choose(endpoints, self._sites, port)

    async def sites(self) -> tuple[SiteTasks, ...]:
        """The sites as last read (each with its lease's state and age; empty without
        ``sites``)."""
        if self._site_source is None:
            return ()
        await self._start_sites()
        return self._sites

    def known(self, service: ServiceRef) -> Endpoints | None:
        """The endpoints last read, without waiting (None: not live, or not asked for)."""
        followed = self._followed.get(service_key(service))
        return None if followed is None else followed.endpoints

    def stale_for(self, service: ServiceRef | None = None) -> float:
        """Seconds the server has not confirmed the service's endpoints (0.0 while it
        does, about every second even when nothing changes); with no service, what
        ``everything()`` hands over."""
        following: _Following | None
        if service is None:
            following = self._everything
        else:
            following = self._followed.get(service_key(service))
        if following is None or following.follower is None:
            return 0.0
        return following.follower.stale_for

    async def watch(self, service: ServiceRef) -> AsyncIterator[Endpoints | None]:
        """The service's endpoints now, then again each time they change (None while the
        service is not live)."""
        followed = await self._follow(service_key(service))
        queue: asyncio.Queue[Endpoints | None] = asyncio.Queue()
        followed.watchers.append(queue)
        try:
            yield followed.endpoints
            while True:
                yield await queue.get()
        finally:
            followed.watchers.remove(queue)

    async def everything(self) -> AsyncIterator[Followed]:
        """Every live service's endpoints and every live task: all of them first
        (``Discovered``), then each change (``EndpointsChanged``, ``TasksChanged``).

        For a reader that must answer for any name, including names nobody asked for
        before (the DNS server): one read of everything rather than a follow per name.
        If the first read fails, that is raised; after it, a failed read hands over
        nothing until the server answers again (what was handed over stays the last
        known, and ``stale_for()`` grows), then everything again as a ``Discovered``,
        which replaces it.
        """
        everything = self._everything = _Everything()
        items = self._restarting(None, None, everything, with_tasks=True)
        if self._site_source is not None:
            items = self._with_sites(items)
        try:
            async with contextlib.aclosing(items) as reading:
                async for item in reading:
                    everything.read = True
                    yield item
        finally:
            if self._everything is everything:
                self._everything = None

    # -- sites ----------------------------------------------------------------------------

    async def _start_sites(self) -> None:
        """Read the sites now (once), then on each change and every ``sites_every``
        seconds."""
        if self._sites_task is None:
            self._sites_task = asyncio.create_task(self._read_sites())
        await self._sites_read.wait()

    async def _read_sites(self) -> None:
        assert self._site_source is not None
        async for found in site_reads(self._site_source, self._sites_every):
            if isinstance(found, Exception):
                # Not kept: a lease read earlier would go on saying "live" about a site
                # nobody can hear now. Until a read succeeds, the local endpoints only.
                log.warning("reading the sites failed (serving local endpoints only): %s", found)
                if self._sites:
                    self._sites = ()
                    for listener in self._site_listeners:
                        listener.set()
            else:
                before = [(s.site, s.state, s.tasks) for s in self._sites]
                self._sites = tuple(found)
                if not self._sites_read.is_set() or before != [
                    (s.site, s.state, s.tasks) for s in found
                ]:
                    for listener in self._site_listeners:
                        listener.set()
            self._sites_read.set()

    def _chosen(self, found: ServiceEndpoints) -> ServiceEndpoints:
        return ServiceEndpoints(found.record, choose(found.endpoints, self._sites).endpoints)

    async def _with_sites(
        self, items: AsyncGenerator[Followed, None]
    ) -> AsyncGenerator[Followed, None]:
        """``items`` with each service's endpoints replaced by the cross-site answer, and
        a MODIFIED for each service whose answer a new read of the sites changed."""
        await self._start_sites()
        changed = asyncio.Event()
        self._site_listeners.append(changed)
        local: dict[ServiceKey, ServiceEndpoints] = {}
        shown: dict[ServiceKey, Endpoints] = {}
        next_item: asyncio.Future[Followed] | None = None
        waiting: asyncio.Future[Any] | None = None
        try:
            while True:
                if next_item is None:
                    next_item = asyncio.ensure_future(anext(items))
                if waiting is None:
                    waiting = asyncio.ensure_future(changed.wait())
                done, _ = await asyncio.wait(
                    {next_item, waiting}, return_when=asyncio.FIRST_COMPLETED
                )
                if next_item in done:
                    try:
                        item = next_item.result()
                    except StopAsyncIteration:
                        return
                    next_item = None
                    match item:
                        case Discovered():
                            local = {found.key: found for found in item.services}
                            chosen = [self._chosen(found) for found in item.services]
                            shown = {found.key: found.endpoints for found in chosen}
                            yield Discovered(chosen, item.tasks)
                        case EndpointsChanged():
                            if item.kind == "DELETED":
                                local.pop(item.service.key, None)
                                shown.pop(item.service.key, None)
                                yield item
                                continue
                            local[item.service.key] = item.service
                            found = self._chosen(item.service)
                            shown[found.key] = found.endpoints
                            yield EndpointsChanged(item.kind, found, item.change)
                        case TasksChanged():
                            yield item
                        case _:
                            assert_never(item)
                if waiting in done:
                    changed.clear()
                    waiting = None
                    for key, service in list(local.items()):
                        found = self._chosen(service)
                        if shown.get(key) != found.endpoints:
                            shown[key] = found.endpoints
                            yield EndpointsChanged("MODIFIED", found)
        finally:
            self._site_listeners.remove(changed)
            for pending in (next_item, waiting):
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await pending
            with contextlib.suppress(RuntimeError):
                await items.aclose()

    # -- following ------------------------------------------------------------------------

    async def _follow(self, key: ServiceKey) -> _Followed:
        followed = self._followed.get(key)
        if followed is None:
            followed = self._followed[key] = _Followed(key)
            followed.task = asyncio.create_task(self._keep_following(followed))
        if not followed.read.is_set():
            await followed.read.wait()
        if followed.error is not None and followed.endpoints is None:
            error, followed.error = followed.error, None
            self._followed.pop(key, None)
            if followed.task is not None:
                followed.task.cancel()
            raise error
        return followed

    async def _keep_following(self, followed: _Followed) -> None:
        """Follow the service until closed, keeping what was known through failures."""
        namespace, name = followed.key
        async for item in self._restarting(namespace, name, followed, with_tasks=False):
            match item:
                case Discovered():
                    followed.set(item.services[0].endpoints if item.services else None)
                case EndpointsChanged():
                    gone = item.kind == "DELETED"
                    followed.set(None if gone else item.service.endpoints)
                case TasksChanged():
                    continue  # not asked for
                case _:
                    assert_never(item)
            followed.read.set()

    async def _restarting(
        self,
        namespace: str | None,
        name: str | None,
        following: _Following,
        *,
        with_tasks: bool,
    ) -> AsyncGenerator[Followed, None]:
        """A Follower's items until closed; a failed read is reported and, a second
        later, started again from the current state (a new ``Discovered``). The failed
        Follower stays the one ``stale_for`` asks until the new one has handed something
        over: until then, what is served is still what the failed one read."""
        what = f"{namespace}/{name}" if name is not None else namespace or "every service"
        while True:
            follower = Follower(
                self.log, namespace, name, on_skipped=self.on_skipped, resync=self.resync
            )
            items = follower.with_tasks() if with_tasks else follower.__aiter__()
            try:
                async with contextlib.aclosing(items) as reading:
                    async for item in reading:
                        following.follower = follower
                        yield item
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the read failed: keep what we had, try again
                log.warning("following %s failed: %s", what, exc)
                following.failed(exc)
            await asyncio.sleep(_RESTART_S)
