"""The registry as a library: what ``skyctl`` calls, and what programs can call too."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from events import (
    Event,
    Service,
    ServiceCreated,
    StreamSpec,
    encode,
    filter_for,
    new_event_id,
    subject_for,
    utc_now,
)
from registry.commands import Current, decide_create, decide_delete
from registry.credentials import Credentials, local_actor
from registry.entry import Entry, Skipped, read_entry
from registry.errors import Conflict, NotFound, UnreadableHistory
from registry.feed import LogRecord, read_log
from registry.history import HistoryItem, PastState, service_history, state_at
from registry.jetstream import DEFAULT_URL, JetStreamLog, Start, WrongLastSequence
from registry.projection import Change, ServiceRecord
from registry.projector import SkipHandler, last_readable, read_current, report_skipped
from registry.subscription import StartAt, Subscription
from registry.watch import Snapshot, watch
from registry.when import AtSequence, AtTime, When

if TYPE_CHECKING:
    from registry.bulk import Outcome

E = TypeVar("E", bound=Event)

__all__ = ["Registry", "local_actor"]

# A create or delete re-decides after losing a race; losing this often in a row means
# the service is being hammered, and the caller should hear about it.
_MAX_ATTEMPTS = 5


class Registry:
    """Create, delete, read and watch services in the log on one NATS server."""

    def __init__(
        self,
        log: JetStreamLog,
        *,
        actor: str | None = None,
        on_skipped: SkipHandler = report_skipped,
        retry_for: float = 10.0,
    ) -> None:
        self.log = log
        self._actor = actor
        self.on_skipped = on_skipped
        # How long a read or write keeps retrying while the server is away (a restart, a
        # leader election) before the caller hears WriteNotConfirmed / ServerError.
        self.retry_for = retry_for

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
    ) -> Registry:
        """Connect, failing within seconds if nobody answers at ``url``.

        Once connected, a program's registry reconnects by itself for as long as it
        runs (``keep_reconnecting``); one-shot tools pass False to fail fast instead.
        """
        log = await JetStreamLog.open(
            url,
            spec=spec,
            credentials=credentials,
            keep_reconnecting=keep_reconnecting,
            api_timeout=api_timeout,
        )
        return cls(log, actor=actor, on_skipped=on_skipped, retry_for=retry_for)

    async def close(self) -> None:
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

    async def create(self, service: Service) -> ServiceRecord:
        """Append ``ServiceCreated`` unless the service is live (AlreadyExists)."""
        actor = await self.actor()
        seq, event, _ = await self.write(
            service.namespace,
            service.name,
            lambda current: decide_create(
                service, current, event_id=new_event_id(), time=utc_now(), actor=actor
            ),
        )
        return ServiceRecord.from_created(seq, event)

    async def delete(self, namespace: str, name: str) -> ServiceRecord:
        """Append ``ServiceDeleted`` if the service is live (NotFound otherwise)."""
        actor = await self.actor()
        _, _, current = await self.write(
            namespace,
            name,
            lambda current: decide_delete(
                namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
            ),
        )
        assert current.entry is not None  # decide_delete checked it is live
        return _record(current.entry)

    async def write(
        self,
        namespace: str,
        name: str,
        decide: Callable[[Current], E],
        current: Current | None = None,
    ) -> tuple[int, E, Current]:
        """Decide on the service's current state and append the event, conditionally.

        The server appends only if the subject still ends where the decision read it;
        after a lost race the state is read again and the decision made again (it is
        usually a refusal then). Returns the sequence, the event and the state it was
        decided on. ``current`` saves the first read when the caller already has it.
        """
        subject = subject_for(namespace, name)
        for _ in range(_MAX_ATTEMPTS):
            if current is None:
                current = await self._decidable(namespace, name)
            event = decide(current)
            try:
                seq = await self.log.append(
                    subject,
                    encode(event),
                    msg_id=event.id,
                    expected_last_subject_seq=current.expected_seq,
                    retry_for=self.retry_for,
                )
            except WrongLastSequence:
                current = None  # someone wrote first: decide again on what they wrote
                continue
            return seq, event, current
        raise Conflict(namespace, name)

    async def _decidable(self, namespace: str, name: str) -> Current:
        """The current state, if this version can read it: a writer never guesses."""
        current = await self.current(namespace, name)
        if current.last is not None and (
            current.entry is None or current.entry.seq != current.last.seq
        ):
            problem = read_entry(current.last)
            reason = problem.reason if isinstance(problem, Skipped) else "unreadable"
            raise UnreadableHistory(namespace, name, current.last.seq, reason)
        return current

    async def create_many(
        self, services: Iterable[Service | Mapping[str, Any]], *, concurrency: int = 256
    ) -> builtins.list[Outcome]:
        """Create many services, pipelined; one outcome per service (``registry.bulk``)."""
        from registry.bulk import create_many

        return await create_many(self, services, concurrency=concurrency)

    async def delete_many(
        self, keys: Iterable[tuple[str, str]], *, concurrency: int = 256
    ) -> builtins.list[Outcome]:
        """Delete many ``(namespace, name)`` services, pipelined (``registry.bulk``)."""
        from registry.bulk import delete_many

        return await delete_many(self, keys, concurrency=concurrency)

    # -- reads -----------------------------------------------------------------------

    async def current(self, namespace: str, name: str) -> Current:
        """The subject's last message and last readable event: one direct get, usually."""
        subject = subject_for(namespace, name)
        last = await self.log.last(subject, retry_for=self.retry_for)
        if last is None:
            return Current(None, None)
        entry = read_entry(last)
        if isinstance(entry, Entry):
            return Current(last, entry)
        self.on_skipped(entry)
        return Current(last, await last_readable(self.log, subject, lambda _: None))

    async def get(self, namespace: str, name: str) -> ServiceRecord:
        current = await self.current(namespace, name)
        if not current.live:
            raise NotFound(namespace, name)
        assert current.entry is not None
        return _record(current.entry)

    async def list(self, namespace: str | None = None) -> list[ServiceRecord]:
        """Live services in ``namespace``, or in every namespace when None."""
        projection = await read_current(self.log, filter_for(namespace), self.on_skipped)
        return projection.select()

    def watch(
        self, namespace: str | None = None, name: str | None = None
    ) -> AsyncIterator[Snapshot | Change]:
        """The live list, then every change after it, with nothing missed or doubled."""
        return watch(self.log, namespace, name, on_skipped=self.on_skipped)

    # -- history and subscribers -----------------------------------------------------

    async def history(self, namespace: str, name: str) -> builtins.list[HistoryItem]:
        """Every event of one service, oldest first (deleted services too)."""
        return await service_history(self.log, namespace, name)

    async def at(
        self, when: When, namespace: str | None = None, name: str | None = None
    ) -> PastState:
        """The registry (or a namespace, or one service) as it was at ``when``."""
        return await state_at(self.log, when, namespace, name, self.on_skipped)

    def events(
        self, namespace: str | None = None, *, since: When | None = None, follow: bool = False
    ) -> AsyncIterator[LogRecord]:
        """The log itself, in order, readable or not, from ``since`` (or the beginning)."""
        return self._events(namespace, since, follow)

    async def _events(
        self, namespace: str | None, since: When | None, follow: bool
    ) -> AsyncIterator[LogRecord]:
        if isinstance(since, AtSequence):
            start = Start("seq", seq=since.seq)
        elif isinstance(since, AtTime):
            start = Start("time", time=since.time)
        else:
            start = Start("all")
        async for record in read_log(self.log, filter_for(namespace), start, follow=follow):
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
        return Subscription(
            self.log,
            namespace=namespace,
            name=name,
            start=start,
            durable=durable,
            on_skipped=self.on_skipped,
        )


def _record(entry: Entry) -> ServiceRecord:
    assert isinstance(entry.event, ServiceCreated)
    return ServiceRecord.from_created(entry.seq, entry.event)
