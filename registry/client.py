"""The registry as a library: what ``skyctl`` calls, and what programs can call too.

Modules that only some calls need (bulk writes, history, watch, subscriptions) are
imported by those calls: a one-shot ``skyctl get`` should not pay for loading them.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from events import (
    Event,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatus,
    ServiceUpdated,
    StreamSpec,
    filter_for,
    new_event_id,
    utc_now,
)
from registry.errors import NotFound, ServiceError
from registry.jetstream import DEFAULT_URL, Client, open_log
from registry.jetstream.credentials import Credentials, local_actor
from registry.log.port import Log
from registry.log.reader import Start
from registry.services.current import read_current
from registry.services.decisions import (
    Applied,
    Current,
    Unchanged,
    applied,
    decide_apply,
    decide_create,
    decide_delete,
    decide_force_delete,
    decide_readdress,
    decide_update,
)
from registry.services.projection import Change, ServiceRecord
from registry.services.projector import SkipHandler, list_current, report_skipped

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from events.control import ReadinessAction
    from events.quota import QuotaResource, ResourceQuotaSet
    from events.task import Task
    from registry.addresses.allocator import Allocator
    from registry.addresses.holdings import Ranges
    from registry.discovery.announce import Announcer
    from registry.discovery.checks import Check
    from registry.discovery.crosssite import SiteTasks
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.follower import Follower, ServiceEndpoints, TasksChanged
    from registry.discovery.keeper import TaskKeeper
    from registry.discovery.resolver import Resolver
    from registry.discovery.served import Served
    from registry.discovery.sitefeed import SiteFeed
    from registry.discovery.tasks import LiveTask
    from registry.services.audit import Acknowledged
    from registry.services.batch import Prepared
    from registry.services.bulk import Outcome
    from registry.services.feed import LogRecord
    from registry.services.history import HistoryItem, PastState
    from registry.services.proof import Prover, Signer, Trust
    from registry.services.status import StatusFeed
    from registry.services.subscription import StartAt, Subscription
    from registry.services.watch import Snapshot
    from registry.services.when import When
    from registry.services.writer import Writer, Written
    from registry.sites.links import SiteReport

E = TypeVar("E", bound=Event)

__all__ = ["Registry", "RolledBack", "local_actor"]


@dataclass(frozen=True, slots=True)
class RolledBack:
    """What ``rollback`` did: the revision restored, the service after it (None: the
    live definition was that one already, nothing written) and what it changed."""

    revision: int
    record: ServiceRecord | None
    changes: tuple[str, ...]


def _clip(text: str) -> str:
    """Who asks, as one printable line a heartbeat's reason can carry."""
    return "".join(c if c.isprintable() else "?" for c in text)[:60] or "?"


class Registry:
    """Create, delete, read and watch services in the log on one NATS server."""

    def __init__(
        self,
        log: Log,
        *,
        actor: str | None = None,
        on_skipped: SkipHandler = report_skipped,
        retry_for: float = 10.0,
        signer: Signer | None = None,
    ) -> None:
        self.log = log
        # A signer proves who writes (``registry.services.proof``); the actor is then its user.
        self.signer = signer
        self._actor = signer.actor if signer is not None else actor
        self.on_skipped = on_skipped
        # How long a read or write keeps retrying while the server is away (a restart, a
        # leader election) before the caller hears WriteNotConfirmed / ServerError.
        self.retry_for = retry_for
        self._announcer: Announcer | None = None
        self._allocator: Allocator | None = None
        # At a site: the credentials it connected with, and its connection to the hub
        # (``site_tasks``), opened when first needed.
        self.credentials: Credentials | None = None
        self._hub: Registry | None = None

    async def actor(self) -> str:
        """Who the events this registry writes will name: the authenticated NATS user,
        else the local user at this host (asked once, on the first write)."""
        if self._actor is None:
            self._actor = await self.log.authenticated_user() or local_actor()
        return self._actor

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        credentials: Credentials | None = None,
        actor: str | None = None,
        spec: StreamSpec | None = None,
        keep_reconnecting: bool = True,
        on_skipped: SkipHandler = report_skipped,
        api_timeout: float = 5.0,
        retry_for: float = 10.0,
        client: Client = "auto",
        create: bool = True,
    ) -> Registry:
        """Connect, failing within seconds if nobody answers at ``url``. Without
        ``create`` (a reader), a server without the registry's streams is
        ``NotARegistry`` rather than given them.

        Once connected, a program's registry reconnects by itself for as long as it
        runs (``keep_reconnecting``); one-shot tools pass False to fail fast instead, and
        get the client that starts fastest (the rule is in ``registry.jetstream``).
        """
        signer = None
        if credentials is not None and credentials.creds_file is not None:
            from registry.services.proof import Signer

            signer = Signer.from_creds(credentials.creds_file)  # one error, before connecting
        elif credentials is not None and credentials.creds_text is not None:
            from registry.services.proof import Signer

            signer = Signer.from_creds_text(credentials.creds_text, "creds")
        log = await open_log(
            url,
            spec=spec,
            credentials=credentials,
            long_lived=keep_reconnecting,
            api_timeout=api_timeout,
            client=client,
            create=create,
        )
        registry = cls(log, actor=actor, on_skipped=on_skipped, retry_for=retry_for, signer=signer)
        registry.credentials = credentials
        return registry

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
        if self._announcer is not None:
            await self._announcer.close()
        await self.log.close()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- commands --------------------------------------------------------------------

    async def create(self, service: Service, *, dry_run: bool = False) -> ServiceRecord:
        """Append ``ServiceCreated`` unless the service is live (AlreadyExists).

        ``dry_run`` decides and writes nothing; the record it returns has revision 0.
        """
        actor = await self.actor()

        def decide(current: Current) -> ServiceCreated:
            return decide_create(
                service, current, event_id=new_event_id(), time=utc_now(), actor=actor
            )

        if dry_run:
            prepared = await self.prepare(service.namespace, service.name, decide)
            return ServiceRecord.from_event(0, prepared.event, prepared.data)
        return (await self.write(service.namespace, service.name, decide)).record()

    async def delete(self, namespace: str, name: str, *, dry_run: bool = False) -> ServiceRecord:
        """Append ``ServiceDeleted`` if the service is live (NotFound otherwise); the record
        of what was deleted. ``dry_run`` decides and writes nothing."""
        actor = await self.actor()

        def decide(current: Current) -> ServiceDeleted:
            return decide_delete(
                namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
            )

        if dry_run:
            current = await self.decidable(namespace, name)
            decide(current)
        else:
            current = (await self.write(namespace, name, decide)).decided_on
        return _live_record(current, namespace, name)

    async def apply(
        self, service: Service, *, expected_revision: int | None = None, dry_run: bool = False
    ) -> Applied:
        """Create the service if it is missing, update it if it differs, write nothing if it
        is equal; with ``expected_revision`` (a manifest's resourceVersion), only on top of
        that revision (``Stale`` otherwise). ``dry_run`` decides and writes nothing."""
        actor = await self.actor()

        def decide(current: Current) -> ServiceCreated | ServiceUpdated:
            return decide_apply(
                service,
                current,
                expected_revision=expected_revision,
                event_id=new_event_id(),
                time=utc_now(),
                actor=actor,
            )

        namespace, name = service.namespace, service.name
        try:
            if dry_run:
                prepared, current = await self._prepare(namespace, name, decide)
                event = prepared.event
                would = ServiceRecord.from_event(0, event, prepared.data, prepared.headers)
                return Applied(applied(event), would, current.record())
            written = await self.write(namespace, name, decide)
        except Unchanged as same:
            return Applied("unchanged", same.record, same.record)
        return Applied(applied(written.event), written.record(), written.decided_on.record())

    async def rollback(
        self, namespace: str, name: str, *, to_revision: int | None = None
    ) -> RolledBack:
        """Restore the service's definition as it was at ``to_revision`` (default: the
        last revision whose definition differs from the live one), as a ``ServiceUpdated``
        written only on top of the revision the history was read at; its addresses and
        status stay (``registry.services.rollback``)."""
        from registry.errors import Stale, stale_state
        from registry.services.diff import changes
        from registry.services.history import service_history
        from registry.services.rollback import plan_rollback

        plan = plan_rollback(
            await service_history(self.log, namespace, name), namespace, name, to_revision
        )
        if plan.unchanged:
            return RolledBack(plan.target, None, ())
        actor = await self.actor()

        def decide(current: Current) -> ServiceUpdated:
            return decide_update(
                plan.service,
                current,
                expected_revision=plan.current,
                event_id=new_event_id(),
                time=utc_now(),
                actor=actor,
            )

        try:
            written = await self.write(namespace, name, decide)
        except Unchanged:
            return RolledBack(plan.target, None, ())
        except Stale as exc:
            now = stale_state(exc.actual)  # it had that revision: its history was just read
            raise ServiceError(
                f'service "{name}" in namespace "{namespace}" changed since revision '
                f"{plan.current} ({now}) while rolling back: nothing was restored; read its "
                "history again",
                namespace,
                name,
            ) from None
        before = written.decided_on.record()
        restored = changes(before.service if before else None, written.event.service)
        return RolledBack(plan.target, written.record(), tuple(str(c) for c in restored))

    async def force_delete(self, namespace: str, name: str) -> tuple[int, ServiceForceDeleted]:
        """Append ``ServiceForceDeleted`` over a last event this version cannot read (which
        no ordinary write will decide over); InvalidInput if it is readable."""
        actor = await self.actor()
        written = await self.write(
            namespace,
            name,
            lambda current: decide_force_delete(
                namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
            ),
            over_unreadable=True,
        )
        return written.seq, written.event

    async def write(
        self,
        namespace: str,
        name: str,
        decide: Callable[[Current], E],
        current: Current | None = None,
        *,
        over_unreadable: bool = False,
    ) -> Written[E]:
        """Decide on the service's current state and append the event, conditionally
        (``registry.services.writer.write``)."""
        from registry.services.writer import write

        return await write(
            self.writer, namespace, name, decide, current=current, over_unreadable=over_unreadable
        )

    async def prepare(
        self, namespace: str, name: str, decide: Callable[[Current], E]
    ) -> Prepared[E]:
        """Everything of a write but sending it: what a dry run shows (the addresses it
        would take included)."""
        prepared, _ = await self._prepare(namespace, name, decide)
        return prepared

    async def _prepare(
        self, namespace: str, name: str, decide: Callable[[Current], E]
    ) -> tuple[Prepared[E], Current]:
        from registry.services.writer import prepare

        return await prepare(self.writer, namespace, name, decide)

    async def set_status(
        self,
        namespace: str,
        name: str,
        status: ServiceStatus,
        *,
        expected_revision: int | None = None,
    ) -> ServiceRecord:
        """Record what a controller reports about a live service (a ``ServiceStatusSet``
        on its status subject, which only the controller role may publish on), about
        ``expected_revision`` when given (``Stale`` if it moved on). Writes nothing when
        the status is already that. The record returned carries the status."""
        from registry.services.status import attach_statuses, report_status

        # Decided only on a last event this code can read (``UnreadableHistory``).
        current = await self.decidable(namespace, name)
        (record,) = await attach_statuses(self.log, [_live_record(current, namespace, name)])
        return await report_status(
            self.log, record, status, await self.actor(), expected_revision=expected_revision
        )

    async def readdress(self, namespace: str, name: str) -> ServiceRecord | None:
        """Give a service created before addresses existed the addresses it lacks, through
        the same atomic batches as a create; None if it lacks none."""
        actor = await self.actor()

        def decide(current: Current) -> ServiceUpdated:
            return decide_readdress(
                namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
            )

        try:
            return (await self.write(namespace, name, decide)).record()
        except Unchanged:
            return None

    @property
    def writer(self) -> Writer:
        """What every write of this registry shares, single or bulk."""
        from registry.services.writer import Writer

        return Writer(
            self.log,
            self.allocator,
            self.on_skipped,
            self.retry_for,
            self.signer.headers if self.signer is not None else None,
        )

    @property
    def allocator(self) -> Allocator:
        """Chooses and checks addresses; made on first write (a one-shot ``get`` does not
        load it)."""
        if self._allocator is None:
            from registry.addresses.allocator import Allocator

            self._allocator = Allocator(self.log)
        return self._allocator

    async def ranges(self) -> Ranges:
        """Where new addresses come from (``skyctl init --service-cidr/--node-port-range``)."""
        return await self.allocator.ranges()

    async def set_ranges(
        self, service_cidr: str | None = None, node_ports: tuple[int, int] | None = None
    ) -> tuple[Ranges, bool]:
        """Record new ranges (what is not given stays); the ranges now, and whether they
        changed. Addresses already held stay with their services."""
        from registry.addresses.ranges import set_ranges

        return await set_ranges(
            self.log, self.allocator, service_cidr, node_ports, await self.actor()
        )

    async def set_quota(
        self, namespace: str, name: str, hard: Mapping[QuotaResource, int]
    ) -> tuple[ResourceQuotaSet, bool]:
        """Set the namespace's quota (``registry.addresses.quotas``; admins only: the
        server refuses anyone else); it, and whether the namespace had none before."""
        from registry.addresses.quotas import parse_hard, set_quota

        checked = parse_hard(",".join(f"{k}={v}" for k, v in hard.items()))
        return await set_quota(self.log, namespace, name, checked, await self.actor())

    async def quota(self, namespace: str) -> ResourceQuotaSet | None:
        """The namespace's quota; None: unlimited."""
        from registry.addresses.quotas import read_quota

        return await read_quota(self.log, namespace)

    async def acknowledge_break(self, seq: int, reason: str) -> tuple[Acknowledged, bool]:
        """Record that the break ``audit verify`` reports at ``seq`` was investigated
        (admins only: the server refuses anyone else); the acknowledgement, and whether it
        is new (``registry.services.audit``)."""
        from registry.services.audit import acknowledge

        return await acknowledge(self.log, seq, reason, await self.actor())

    async def create_many(
        self,
        services: Iterable[Service | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
    ) -> builtins.list[Outcome]:
        """Create many services, pipelined; one outcome per service (``registry.services.bulk``)."""
        from registry.services.bulk import create_many
        from registry.services.writer import DEFAULT_CONCURRENCY

        return await create_many(
            self.writer,
            services,
            actor=await self.actor(),
            concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
        )

    async def apply_many(
        self,
        items: Sequence[tuple[Service, int | None]],
        *,
        concurrency: int | None = None,
    ) -> builtins.list[Applied | ServiceError]:
        """``apply`` for many ``(service, expected revision)``, pipelined
        (``registry.services.bulk``)."""
        from registry.services.bulk import apply_many
        from registry.services.writer import DEFAULT_CONCURRENCY

        return await apply_many(
            self.writer,
            items,
            actor=await self.actor(),
            concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
        )

    async def delete_many(
        self, keys: Iterable[tuple[str, str]], *, concurrency: int | None = None
    ) -> builtins.list[Outcome]:
        """Delete many ``(namespace, name)`` services, pipelined (``registry.services.bulk``)."""
        from registry.services.bulk import delete_many
        from registry.services.writer import DEFAULT_CONCURRENCY

        return await delete_many(
            self.writer,
            keys,
            actor=await self.actor(),
            concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
        )

    # -- reads -----------------------------------------------------------------------

    async def current(self, namespace: str, name: str) -> Current:
        """The subject's last message and last readable event: one direct get, usually."""
        return await read_current(
            self.log, namespace, name, self.on_skipped, retry_for=self.retry_for
        )

    async def decidable(self, namespace: str, name: str) -> Current:
        """The current state, refusing (``UnreadableHistory``) one this version cannot read."""
        from registry.services.writer import decidable

        return await decidable(self.log, namespace, name, self.on_skipped, retry_for=self.retry_for)

    async def get(self, namespace: str, name: str) -> ServiceRecord:
        """The live service, with the status a controller reported for it."""
        from registry.services.status import attach_statuses

        record = _live_record(await self.current(namespace, name), namespace, name)
        (record,) = await attach_statuses(self.log, [record])
        return record

    async def list(self, namespace: str | None = None) -> builtins.list[ServiceRecord]:
        """Live services in ``namespace``, or in every namespace when None."""
        from registry.services.status import attach_statuses

        projection = await list_current(self.log, filter_for(namespace), self.on_skipped)
        return await attach_statuses(self.log, projection.select())

    def watch(
        self, namespace: str | None = None, name: str | None = None
    ) -> AsyncIterator[Snapshot | Change]:
        """The live list, then every change after it, with nothing missed or doubled."""
        from registry.services.watch import watch

        return watch(self.log, namespace, name, on_skipped=self.on_skipped)

    # -- history and subscribers -----------------------------------------------------

    async def history(self, namespace: str, name: str) -> builtins.list[HistoryItem]:
        """Every event of one service, oldest first (deleted services too)."""
        from registry.services.history import service_history

        return await service_history(self.log, namespace, name)

    async def served_at(
        self, namespace: str, name: str, when: When, *, site: str | None = None
    ) -> Served:
        """Who served ``namespace/name`` at ``when``: the service as it was then, and the
        tasks the membership history says were live then (``NotRecorded`` if nothing
        records membership; ``NotFound`` if the service was not live then). At the hub,
        ``site`` reads the tasks of that site instead, from the hub's copy of its
        history (``docs/sites.md``)."""
        from registry.discovery.served import served_at
        from registry.services.when import AtTime

        past = await self.at(when, namespace, name)
        record = past.projection.services.get((namespace, name))
        if record is None:
            raise NotFound(namespace, name)
        moment = when.time if isinstance(when, AtTime) else past.moment
        assert moment is not None  # a live service: the log holds its events
        return await served_at(self.log, record, moment, self.on_skipped, site)

    async def at(
        self, when: When, namespace: str | None = None, name: str | None = None
    ) -> PastState:
        """The registry (or a namespace, or one service) as it was at ``when``."""
        from registry.services.history import state_at

        return await state_at(self.log, when, namespace, name, self.on_skipped)

    def events(
        self,
        namespace: str | None = None,
        *,
        since: When | None = None,
        follow: bool = False,
        name: str | None = None,
    ) -> AsyncIterator[LogRecord]:
        """The log itself, in order, readable or not, from ``since``: else from the start,
        or, when following, from now (as ``kubectl events -w``); one service's if ``name``."""
        return self._events(namespace, name, since, follow)

    async def _events(
        self, namespace: str | None, name: str | None, since: When | None, follow: bool
    ) -> AsyncIterator[LogRecord]:
        from registry.services.feed import read_log
        from registry.services.when import AtSequence, AtTime

        if isinstance(since, AtSequence):
            start = Start("seq", seq=since.seq)
        elif isinstance(since, AtTime):
            start = Start("time", time=since.time)
        else:
            start = Start("new" if follow else "all")
        filter_subject = filter_for(namespace, name)
        async for record in read_log(self.log, filter_subject, start, follow=follow):
            yield record

    def subscribe(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        start: StartAt = "new",
        durable: str | None = None,
    ) -> Subscription:
        """Typed events as they are appended; durable (resumes after its last ack) when named.

        Use as ``async with registry.subscribe(...) as sub: async for d in sub: ...``.
        """
        from registry.services.subscription import Subscription

        return Subscription(
            self.log,
            namespace=namespace,
            name=name,
            start=start,
            durable=durable,
            on_skipped=self.on_skipped,
        )

    # -- tasks and endpoints ---------------------------------------------------------------

    async def announcer(self) -> Announcer:
        """What keeps this registry's announced tasks live (one per connection)."""
        if self._announcer is None:
            from registry.discovery.announce import Announcer

            self._announcer = Announcer(await self.log.liveness())
        return self._announcer

    @contextlib.asynccontextmanager
    async def announce(
        self,
        task: Task | Mapping[str, Any],
        *,
        ttl: int = 15,
        check: Check | None = None,
        replace: bool = False,
    ) -> AsyncIterator[TaskKeeper]:
        """Keep ``task`` announced (a heartbeat every ``ttl / 3`` s) while the block runs,
        then withdraw it at once. If the program dies instead, the server forgets the
        task when the TTL of its last heartbeat runs out.

        With ``check`` (``registry.discovery.checks.parse_check``), the task is ready
        only while its check passes. Readiness requests (``skyctl task drain``) are
        answered while the block runs; the keeper yielded takes them from the program
        too (``await keeper.request(ReadinessAction.DRAIN, "deploy")``). A name another
        announcer keeps live is refused (``TaskTaken``) unless ``replace``.
        """
        from registry.discovery.announce import check_ttl, task_from
        from registry.discovery.keeper import TaskKeeper

        chosen = task_from(task)
        check_ttl(ttl)
        if not replace:
            await self._refuse_if_taken(chosen)
        announcer = await self.announcer()
        keeper = TaskKeeper(
            announcer, await self.log.liveness(), chosen, ttl, check, on_error=announcer.on_error
        )
        try:
            await keeper.start()
            yield keeper
        finally:
            await keeper.stop(keeper.leaving)

    async def _refuse_if_taken(self, task: Task) -> None:
        """``TaskTaken`` if another announcer's heartbeat keeps ``task``'s name live."""
        from events.liveness import task_filter
        from events.stamps import utc_now
        from registry.discovery.current import read_tasks
        from registry.errors import TaskTaken

        view = await read_tasks(self.log, task_filter(task.namespace, task.name), self.on_skipped)
        live = view.task((task.namespace, task.name))
        if live is not None:
            heard = max(0.0, (utc_now() - live.heard).total_seconds())
            detail = (
                f"address {live.address}, instance {live.instance[:12]}, last heartbeat "
                f"{heard:.0f}s ago"
            )
            raise TaskTaken(task.namespace, task.name, detail, live.ttl)

    async def set_readiness(
        self,
        namespace: str,
        name: str,
        action: ReadinessAction,
        reason: str | None = None,
        *,
        timeout: float = 5.0,
    ) -> Task:
        """Ask the announcer of a live task to change its readiness (``skyctl task
        drain``); the task as its heartbeat says once the change is stored.
        ``TaskNotAnswering`` if no announcer answers."""
        from events.codec import DecodeError
        from events.control import ReadinessRequest, decode_reply, encode_control
        from events.liveness import control_subject
        from registry.errors import ServerError, TaskError, TaskNotAnswering

        request = ReadinessRequest(action=action, reason=reason, by=_clip(await self.actor()))
        liveness = await self.log.liveness()
        data = await liveness.ask(
            control_subject(namespace, name), encode_control(request), timeout=timeout
        )
        if data is None:
            raise TaskNotAnswering(namespace, name)
        try:
            reply = decode_reply(data)
        except DecodeError as exc:
            raise ServerError(
                f"the announcer of {namespace}/{name} answered garbage: {exc}"
            ) from None
        if reply.task is None or (reply.task.namespace, reply.task.name) != (namespace, name):
            raise TaskError(
                f"the announcer of task {name} in namespace {namespace} refused: "
                f"{reply.error or 'it answered for another task'}",
                namespace,
                name,
            )
        return reply.task

    async def tasks(
        self, namespace: str | None = None, *, label: tuple[str, str] | None = None
    ) -> builtins.list[LiveTask]:
        """Live tasks of a namespace (or all), only those carrying ``label`` if given
        (read by that label on the server)."""
        from events.liveness import selector_filter, task_filter
        from registry.discovery.current import read_tasks

        if label is not None:
            filters = [selector_filter(namespace or "*", *label)]
        else:
            filters = task_filter(namespace)
        view = await read_tasks(self.log, filters, self.on_skipped)
        tasks = view.tasks(namespace)
        return tasks if label is None else [t for t in tasks if t.labels.get(label[0]) == label[1]]

    async def endpoints(
        self, namespace: str, name: str, *, record: ServiceRecord | None = None
    ) -> Endpoints:
        """One service's endpoints now (NotFound if it is not live; ``record``: the
        service, when it has just been read)."""
        from registry.discovery.current import endpoints_of

        record = record or await self.get(namespace, name)
        return await endpoints_of(self.log, record, self.on_skipped)

    async def list_endpoints(self, namespace: str | None = None) -> builtins.list[ServiceEndpoints]:
        """Every live service of a namespace (or all) with its endpoints, reading the
        namespace's tasks once."""
        from events.liveness import task_filter
        from registry.discovery.current import read_tasks
        from registry.discovery.follower import service_endpoints

        records = await self.list(namespace)
        view = await read_tasks(self.log, task_filter(namespace), self.on_skipped)
        return service_endpoints(records, view)

    def follow_statuses(
        self, namespace: str | None = None, name: str | None = None
    ) -> AbstractAsyncContextManager[StatusFeed]:
        """Status reports in scope, then each new one (``registry.services.status``)."""
        from registry.services.status import follow_statuses

        return follow_statuses(self.log, namespace, name)

    def follow_endpoints(self, namespace: str | None = None, name: str | None = None) -> Follower:
        """Services and their endpoints, then each change (``registry.discovery.follower``)."""
        from registry.discovery.follower import Follower

        return Follower(self.log, namespace, name, on_skipped=self.on_skipped)

    async def follow_tasks(
        self, namespace: str | None = None
    ) -> AsyncIterator[tuple[LiveTask, ...] | TasksChanged]:
        """The live tasks of a namespace (or all), then each change as it happens: a task
        announced, changed, withdrawn or expired (``TasksChanged``; after a fresh read of
        the liveness stream, renewals too: compare what you care about). The follower of
        endpoints reads them (``registry.discovery.follower``), so reconnects and resyncs
        are handled as they are for endpoints."""
        from registry.discovery.follower import Discovered, TasksChanged

        async with (
            self.follow_endpoints(namespace) as follower,
            contextlib.aclosing(follower.with_tasks()) as items,
        ):
            async for item in items:
                if isinstance(item, Discovered):
                    yield item.tasks
                elif isinstance(item, TasksChanged):
                    yield item

    def prover(self, trust: Trust | None, *, from_start: bool = False) -> Prover:
        """Proves events as a reader meets them, place in the chain included
        (``registry.services.proof``): in stream order from the start, or in any order,
        asking the log where each signed event stands."""
        from registry.services.proof import Prover

        return Prover(trust, self.log, from_start=from_start)

    def resolver(self, *, sites: bool = False, **options: Any) -> Resolver:
        """A ``Resolver`` over this registry's connection (``registry.discovery.resolver``);
        ``sites``: with the other sites' endpoints by their leases (``other_sites``),
        which a service falls back to when it has no ready endpoint of its own
        (``registry.discovery.crosssite``)."""
        from registry.discovery.resolver import Resolver

        if sites:
            options["sites"] = _OtherSites(self)
        return Resolver(self.log, on_skipped=self.on_skipped, **options)

    async def site_tasks(self, names: tuple[str, ...] = ()) -> builtins.list[SiteTasks]:
        """Each site this hub sources (or those named), by name: the hub's lease on it
        (``registry.sites.model``) and the tasks the hub's copy of its membership history
        says are live there now (the last it reported, if the hub cannot hear it; none if
        its lease is revoked). Empty at a server with no sites. The site's recorder
        (``skyctl record`` there) is what writes that history."""
        found = []
        for lease in await self.site_leases(names):
            if lease.state != "revoked":
                lease = dataclasses.replace(lease, tasks=await self.site_live_tasks(lease.site))
            found.append(lease)
        return found

    async def site_leases(self, names: tuple[str, ...] = ()) -> builtins.list[SiteTasks]:
        """``site_tasks`` without the tasks: each site's lease and what it says."""
        from registry.discovery.crosssite import SiteTasks
        from registry.sites.model import lease_warning

        return [
            SiteTasks(
                report.site.name,
                report.state,
                report.unheard_s,
                (),
                lease_warning(report.site, report.state, report.unheard_s),
            )
            for report in await self.sites(names)
        ]

    def site_feed(self, names: tuple[str, ...] = ()) -> SiteFeed:
        """At a hub, its sites (or those named) for a long-running reader: leases read at
        each ``read()``, tasks followed, ``changed`` set when one of them changes
        (``registry.discovery.sitefeed``). ``close()`` it when done."""
        from registry.discovery.sitefeed import SiteFeed

        return SiteFeed(
            lambda: self.site_leases(names),
            lambda site: self.log.membership(site=site),
            self.site_live_tasks,
            on_skipped=self.on_skipped,
        )

    async def site_live_tasks(self, site: str) -> tuple[Task, ...]:
        """The tasks the hub's copy of ``site``'s history says are live there now (one
        read of each task's last transition)."""
        from events.membership import MEMBERSHIP_PREFIX
        from registry.discovery.membership import Members

        membership = await self.log.membership(site=site)
        members = Members(self.on_skipped)
        members.load(await membership.as_of(f"{MEMBERSHIP_PREFIX}.*.*"))
        return tuple(m.task for m in members.live() if m.task is not None)

    async def sites(self, names: tuple[str, ...] = ()) -> builtins.list[SiteReport]:
        """Each site this hub sources (or those named), as its views' stream info says
        (``skyctl get sites``); none at a server with no sites."""
        from registry.jetstream.log import JetStreamLog
        from registry.sites.links import read_sites

        if not isinstance(self.log, JetStreamLog):
            return []
        return await read_sites(self.log.session, names)

    async def readable_sites(self) -> builtins.list[SiteTasks]:
        """``site_tasks()``, or none for someone who may not list the hub's streams (a
        tenant's role): what shows a hub's sites beside its own (``describe``, the web
        UI), where their absence only leaves the view as it was before sites."""
        from registry.errors import PermissionDenied

        try:
            return await self.site_tasks()
        except PermissionDenied:
            return []

    async def other_sites(self, feed: SiteFeed | None = None) -> builtins.list[SiteTasks]:
        """The other places a service here may fall back to (``Resolver(sites=...)``): at
        a hub, its sites (``site_tasks``, or as ``feed`` follows them); at a site, the
        hub's view, asked of the hub at its client URL with this site's credentials, and
        only while this site hears the hub within its lease (``skyctl site status``): the
        hub's own live tasks (as site ``<hub domain>``) and its other sites by the hub's
        leases. A site cut off from the hub has none: what it cannot hear, it cannot vouch
        for. Elsewhere, none."""
        from events.liveness import task_filter
        from registry.discovery.crosssite import SiteTasks
        from registry.discovery.current import read_tasks
        from registry.jetstream.log import JetStreamLog
        from registry.sites.links import read_hub

        if not isinstance(self.log, JetStreamLog):
            return []
        await self.log.checked()
        mirror = self.log.site
        if mirror is None:
            return list(await feed.read()) if feed is not None else await self.site_tasks()
        heard = await read_hub(self.log.session)
        if not heard.link_up:
            return []
        if self._hub is None:
            self._hub = await Registry.connect(
                mirror.hub_url, credentials=self.credentials, on_skipped=self.on_skipped,
                create=False,
            )  # fmt: skip
        hub = self._hub
        others = [s for s in await hub.site_tasks() if s.site != mirror.site]
        view = await read_tasks(hub.log, task_filter(None), self.on_skipped)
        tasks = tuple(max(t.values(), key=lambda t: t.since) for t in view.by_task.values())
        own = SiteTasks(mirror.hub_domain, "live", heard.silent_s, tasks)
        return sorted([own, *others], key=lambda s: s.site)


def _live_record(current: Current, namespace: str, name: str) -> ServiceRecord:
    record = current.record()
    if record is None:
        raise NotFound(namespace, name)
    return record


class _OtherSites:
    """``Registry.other_sites`` for a Resolver (``registry.discovery.resolver.SiteFeed``): at
    a hub, its sites' tasks followed (``registry.discovery.sitefeed``), so a transition at a
    site reaches the Resolver as the hub receives it rather than at its next read; at a
    site, the hub's view read each time (``other_sites``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._feed = registry.site_feed()
        self.changed = self._feed.changed

    async def read(self) -> builtins.list[SiteTasks]:
        return await self._registry.other_sites(self._feed)

    async def close(self) -> None:
        await self._feed.close()
