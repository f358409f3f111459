"""The plan kept current by the Resolver and applied by a forwarder, and checked.

``resolver.everything()`` hands over every service with its endpoints, then each change;
each change re-plans that one service (``plan.Table.update``) and the forwarder applies
only the frontends that changed. Load balancers' ingress IPs come from the controllers'
status reports (``registry.services.status``), followed beside it. While NATS is away
nothing arrives and forwarding stays as it was; when it is back, everything is read again
and the forwarder made equal to it in one step.

Someone else may change what the forwarder holds (``nft flush ruleset``): every
``check_every`` seconds the forwarder is compared with the plan and, if they differ,
written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never

from registry.discovery.follower import (
    Discovered,
    EndpointsChanged,
    ServiceEndpoints,
    TasksChanged,
)
from registry.discovery.resolver import Resolver
from registry.log.port import Log
from registry.proxy.plan import Backends, Change, Frontend, Plan, Scope, Table
from registry.proxy.plan import service_frontends as plan_service
from registry.services.status import StatusFeed, follow_statuses

__all__ = ["Forwarder", "Proxy", "Synced"]


class Forwarder(Protocol):
    """What carries the plan out: the kernel (``nftables.Nftables``) or user space."""

    async def sync(self, plan: Mapping[Frontend, Backends]) -> None: ...

    async def apply(self, changes: Sequence[Change]) -> None: ...

    async def holds(self, plan: Mapping[Frontend, Backends]) -> bool: ...


@dataclass(frozen=True)
class Synced:
    """One application of the plan: how many frontends, and how long it took."""

    full: bool
    frontends: int  # in the plan (full) or changed
    seconds: float


class Proxy:
    """Keeps a forwarder equal to the registry until cancelled."""

    def __init__(
        self,
        forwarder: Forwarder,
        scope: Scope,
        *,
        check_every: float = 10.0,
        on_synced: Callable[[Synced], None] = lambda _: None,
        on_problem: Callable[[str], None] = lambda _: None,
        on_repaired: Callable[[], None] = lambda: None,
    ) -> None:
        self.forwarder = forwarder
        self.scope = scope
        self.table = Table()
        self.services: dict[tuple[str, str], ServiceEndpoints] = {}
        self.loaded = asyncio.Event()
        self._check_every = check_every
        self._on_synced = on_synced
        self._on_problem = on_problem
        self._on_repaired = on_repaired
        self._reported: set[str] = set()
        self._statuses: StatusFeed | None = None
        self._lock = asyncio.Lock()

    async def run(self, resolver: Resolver, log: Log) -> None:
        """Follow and forward until cancelled; raises what the first read raises."""
        async with follow_statuses(log) as statuses:
            self._statuses = statuses
            background = [
                asyncio.create_task(self._follow_statuses(statuses)),
                asyncio.create_task(self._check_periodically()),
            ]
            try:
                async for item in resolver.everything():
                    await self._handle(item)
            finally:
                for task in background:
                    task.cancel()
                for task in background:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _handle(self, item: Discovered | EndpointsChanged | TasksChanged) -> None:
        started = time.perf_counter()  # the change is seen: the sync latency starts
        match item:
            case Discovered():
                self.services = {found.key: found for found in item.services}
                self.table.replace((key, self._plan(found)) for key, found in self.services.items())
                await self._sync()
                self.loaded.set()
            case EndpointsChanged():
                found = item.service
                if item.kind == "DELETED":
                    self.services.pop(found.key, None)
                    changes = self.table.update(found.key, {})
                else:
                    self.services[found.key] = found
                    changes = self.table.update(found.key, self._plan(found))
                await self._apply(changes, started)
            case TasksChanged():
                pass  # endpoints changes say all the proxy needs
            case _:
                assert_never(item)

    def _plan(self, found: ServiceEndpoints) -> Plan:
        record = found.record
        if self._statuses is not None:
            record = self._statuses.attach(record)
        status = record.status
        ingress = [i.ip for i in status.load_balancer.ingress] if status is not None else []
        ready = [a for a in found.endpoints.addresses if a.ready]
        plan, problems = plan_service(record.service, ready, self.scope, ingress)
        for problem in problems:
            self._report(problem)
        return plan

    def _report(self, problem: str) -> None:
        if problem not in self._reported and len(self._reported) < 10_000:
            self._reported.add(problem)
            self._on_problem(problem)

    async def _sync(self) -> None:
        async with self._lock:
            started = time.perf_counter()
            plan = self.table.effective()
            await self.forwarder.sync(plan)
            for frontend, owners in sorted(self.table.conflicts().items()):
                names = ", ".join(f"{ns}/{name}" for ns, name in owners)
                self._report(f"{frontend} is claimed by {names}: forwarded for none of them")
            self._on_synced(Synced(True, len(plan), time.perf_counter() - started))

    async def _apply(self, changes: Sequence[Change], started: float | None = None) -> None:
        """Apply ``changes``; ``Synced.seconds`` counts from ``started`` (when the change
        that caused them was seen) to the forwarder holding them."""
        if not changes:
            return
        async with self._lock:
            started = time.perf_counter() if started is None else started
            await self.forwarder.apply(changes)
            self._on_synced(Synced(False, len(changes), time.perf_counter() - started))
        for change in changes:
            owners = self.table.owners(change.frontend)
            if len(owners) > 1:
                names = ", ".join(f"{ns}/{name}" for ns, name in owners)
                self._report(f"{change.frontend} is claimed by {names}: forwarded for none")

    async def _follow_statuses(self, statuses: StatusFeed) -> None:
        async for message in statuses:
            _, _, rest = message.subject.partition("skyflow.status.")
            namespace, _, name = rest.partition(".")
            found = self.services.get((namespace, name))
            if found is not None and self.loaded.is_set():
                await self._apply(self.table.update(found.key, self._plan(found)))

    async def _check_periodically(self) -> None:
        await self.loaded.wait()
        while True:
            await asyncio.sleep(self._check_every)
            async with self._lock:
                holds = await self.forwarder.holds(self.table.effective())
            if not holds:
                await self._sync()
                self._on_repaired()
