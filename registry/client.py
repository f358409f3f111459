"""The registry as a library: what ``skyctl`` calls, and what programs can call too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from events import (
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
from registry.entry import Entry, read_entry
from registry.errors import Conflict, NotFound
from registry.jetstream import DEFAULT_URL, JetStreamLog, WrongLastSequence
from registry.projection import Change, ServiceRecord
from registry.projector import SkipHandler, last_readable, read_current, report_skipped
from registry.watch import Snapshot, watch

if TYPE_CHECKING:
    from registry.bulk import Outcome

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
    ) -> None:
        self.log = log
        self.actor = actor or local_actor()
        self.on_skipped = on_skipped

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        credentials: Credentials | None = None,
        actor: str | None = None,
        spec: StreamSpec | None = None,
        keep_reconnecting: bool = False,
        on_skipped: SkipHandler = report_skipped,
        api_timeout: float = 5.0,
    ) -> Registry:
        log = await JetStreamLog.open(
            url,
            spec=spec,
            credentials=credentials,
            keep_reconnecting=keep_reconnecting,
            api_timeout=api_timeout,
        )
        return cls(log, actor=actor, on_skipped=on_skipped)

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
        subject = subject_for(service.namespace, service.name)
        for _ in range(_MAX_ATTEMPTS):
            current = await self.current(service.namespace, service.name)
            event = decide_create(
                service, current, event_id=new_event_id(), time=utc_now(), actor=self.actor
            )
            try:
                seq = await self.log.append(
                    subject,
                    encode(event),
                    msg_id=event.id,
                    expected_last_subject_seq=current.expected_seq,
                )
            except WrongLastSequence:
                continue  # someone wrote first: decide again on what they wrote
            return ServiceRecord.from_created(seq, event)
        raise Conflict(service.namespace, service.name)

    async def delete(self, namespace: str, name: str) -> ServiceRecord:
        """Append ``ServiceDeleted`` if the service is live (NotFound otherwise)."""
        subject = subject_for(namespace, name)
        for _ in range(_MAX_ATTEMPTS):
            current = await self.current(namespace, name)
            event = decide_delete(
                namespace,
                name,
                current,
                event_id=new_event_id(),
                time=utc_now(),
                actor=self.actor,
            )
            try:
                await self.log.append(
                    subject,
                    encode(event),
                    msg_id=event.id,
                    expected_last_subject_seq=current.expected_seq,
                )
            except WrongLastSequence:
                continue
            assert current.entry is not None  # decide_delete checked it is live
            return _record(current.entry)
        raise Conflict(namespace, name)

    async def create_many(
        self, services: Iterable[Service | Mapping[str, Any]], *, concurrency: int = 256
    ) -> list[Outcome]:
        """Create many services, pipelined; one outcome per service (``registry.bulk``)."""
        from registry.bulk import create_many

        return await create_many(self, services, concurrency=concurrency)

    async def delete_many(
        self, keys: Iterable[tuple[str, str]], *, concurrency: int = 256
    ) -> list[Outcome]:
        """Delete many ``(namespace, name)`` services, pipelined (``registry.bulk``)."""
        from registry.bulk import delete_many

        return await delete_many(self, keys, concurrency=concurrency)

    # -- reads -----------------------------------------------------------------------

    async def current(self, namespace: str, name: str) -> Current:
        """The subject's last message and last readable event: one direct get, usually."""
        subject = subject_for(namespace, name)
        last = await self.log.last(subject)
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


def _record(entry: Entry) -> ServiceRecord:
    assert isinstance(entry.event, ServiceCreated)
    return ServiceRecord.from_created(entry.seq, entry.event)
