"""The registry for one-shot processes: ``Registry``'s commands without nats-py or pydantic.

A ``skyctl create``/``get``/``delete``/``get -n NS`` process lives for one JetStream
round trip or three; importing nats-py and building the pydantic models would cost it
more than everything else together. ``LiteRegistry`` does the same work as ``Registry``
through ``registry.jetstream.lite`` (the wire client) and ``events.plain``:

- the same decisions (``registry.commands``): create only when not live, delete only
  when live, ``prev`` linking to the subject's last message;
- the same writes: ``Nats-Expected-Last-Subject-Sequence`` enforced by the server,
  ``Nats-Msg-Id`` for idempotent retries, a lost race re-read and decided again;
- the same reads: a subject's last message (direct get), or the last message of each
  subject (a last-per-subject consumer), as the fold of the log would have it.

It takes the common case and hands everything else to ``Registry`` (imported then):
a command whose service's last message ``events.plain`` is not certain about (the
models decode it, report what they must skip, and refuse to write over what they
cannot read), users whose permissions the server limits, and connections the wire
client does not do (TLS, NKeys, several servers).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from events import plain
from events.plain import PlainService
from events.stamps import new_event_id, utc_now
from events.stream import StreamSpec
from events.subjects import filter_for, subject_for
from registry.credentials import Credentials, local_actor
from registry.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from registry.jetstream.lite import LiteLog, NeedsNatsPy
from registry.jetstream.protocol import DEFAULT_URL, WrongLastSequence
from registry.stored import StoredMessage, chain_hash
from registry.views import ServiceView, read_plain, service_model

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.entry import Skipped
    from registry.projector import SkipHandler

__all__ = ["LiteRegistry"]

_MAX_ATTEMPTS = 5  # as Registry's


def _report(skipped: Skipped) -> None:
    from registry.projector import report_skipped

    report_skipped(skipped)


@dataclass(frozen=True, slots=True)
class _State:
    """What a service's subject holds at the moment of deciding (``commands.Current``)."""

    last: StoredMessage | None
    live: ServiceView | None

    @property
    def expected_seq(self) -> int:
        return self.last.seq if self.last else 0

    @property
    def prev(self) -> str | None:
        return chain_hash(self.last.data) if self.last else None


class _Uncertain(Exception):
    """``events.plain`` cannot vouch for the subject's last message: ask the models."""


class LiteRegistry:
    """Create, delete and read services; ``Registry`` behind it for the rare cases."""

    def __init__(
        self,
        log: LiteLog | None,
        *,
        url: str,
        credentials: Credentials | None,
        actor: str | None = None,
        on_skipped: SkipHandler = _report,
        spec: StreamSpec | None = None,
    ) -> None:
        self.log = log
        self.url = url
        self.credentials = credentials
        # As Registry: the user the server authenticated, else the local user at this host.
        self.actor = actor or (log.user if log is not None else None) or local_actor()
        self._actor_given = actor
        self.on_skipped = on_skipped
        self.spec = spec
        self._full: Registry | None = None

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        credentials: Credentials | None = None,
        actor: str | None = None,
        spec: StreamSpec | None = None,
        on_skipped: SkipHandler = _report,
        api_timeout: float = 5.0,
    ) -> LiteRegistry:
        try:
            log: LiteLog | None = await LiteLog.open(
                url, spec=spec, credentials=credentials, api_timeout=api_timeout
            )
        except NeedsNatsPy:
            log = None
        self = cls(
            log, url=url, credentials=credentials, actor=actor, on_skipped=on_skipped, spec=spec
        )
        if log is None:
            await self.full()  # connects (and creates the stream) with nats-py
        return self

    async def full(self) -> Registry:
        """The nats-py, pydantic ``Registry`` on the same server, connected on first use."""
        if self._full is None:
            from registry.client import Registry

            self._full = await Registry.connect(
                self.url,
                credentials=self.credentials,
                actor=self._actor_given,
                spec=self.spec,
                keep_reconnecting=False,  # a one-shot command fails fast instead
                on_skipped=self.on_skipped,
            )
        return self._full

    async def close(self) -> None:
        if self.log is not None:
            await self.log.close()
        if self._full is not None:
            await self._full.close()

    async def __aenter__(self) -> LiteRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reads -----------------------------------------------------------------------

    async def _state(self, log: LiteLog, namespace: str, name: str) -> _State:
        last = await log.last(subject_for(namespace, name))
        if last is None:
            return _State(None, None)
        read = read_plain(last)
        if read is None:
            raise _Uncertain
        kind, raw = read
        return _State(last, ServiceView.from_raw(last.seq, raw) if kind == plain.CREATED else None)

    async def get(self, namespace: str, name: str) -> ServiceView:
        if self.log is not None:
            try:
                state = await self._state(self.log, namespace, name)
            except _Uncertain:
                pass
            else:
                if state.live is None:
                    raise NotFound(namespace, name)
                return state.live
        return ServiceView.from_record(await (await self.full()).get(namespace, name))

    async def list(self, namespace: str | None = None) -> list[ServiceView]:
        """Live services in ``namespace``, or in every namespace when None."""
        if self.log is None:
            return [ServiceView.from_record(r) for r in await (await self.full()).list(namespace)]
        views: list[ServiceView] = []
        for message in await self.log.last_per_subject(filter_for(namespace)):
            read = read_plain(message)
            if read is not None:
                kind, raw = read
                if kind == plain.CREATED:
                    views.append(ServiceView.from_raw(message.seq, raw))
                continue
            view = await self._decode_with_models(message)
            if view is not None:
                views.append(view)
        return sorted(views, key=lambda v: v.key)

    async def _decode_with_models(self, message: StoredMessage) -> ServiceView | None:
        """What ``projector.fold_current`` makes of one last message ``events.plain`` left."""
        from events import ServiceCreated
        from registry.entry import Entry, read_entry
        from registry.projector import last_readable

        entry = read_entry(message)
        if not isinstance(entry, Entry):
            self.on_skipped(entry)
            full = await self.full()
            older = await last_readable(full.log, message.subject, lambda _: None)
            if older is None:
                return None
            entry = older
        if isinstance(entry.event, ServiceCreated):
            return ServiceView.from_event(entry.seq, entry.event)
        return None

    # -- commands --------------------------------------------------------------------

    async def create(self, service: PlainService) -> ServiceView:
        """Append ``ServiceCreated`` unless the service is live (AlreadyExists)."""
        if self.log is not None:
            try:
                return await self._create(self.log, service)
            except _Uncertain:
                pass
        record = await (await self.full()).create(service_model(service))
        return ServiceView.from_record(record)

    async def _create(self, log: LiteLog, service: PlainService) -> ServiceView:
        subject = subject_for(service.namespace, service.name)
        for _ in range(_MAX_ATTEMPTS):
            state = await self._state(log, service.namespace, service.name)
            if state.live is not None:
                raise AlreadyExists(service.namespace, service.name)
            event_id, time = new_event_id(), utc_now()
            data = plain.encode_created(
                service, event_id=event_id, time=time, actor=self.actor, prev=state.prev
            )
            if plain.check(plain.unpack(data)) is None:
                service_model(service)  # raises InvalidInput naming the value
                raise InvalidInput("service", service.name, "not a valid service")
            try:
                seq = await log.append(
                    subject, data, msg_id=event_id, expected_last_subject_seq=state.expected_seq
                )
            except WrongLastSequence:
                continue  # someone wrote first: decide again on what they wrote
            return ServiceView(service, time, seq, event_id, self.actor)
        raise Conflict(service.namespace, service.name)

    async def delete(self, namespace: str, name: str) -> ServiceView:
        """Append ``ServiceDeleted`` if the service is live (NotFound otherwise)."""
        if self.log is not None:
            try:
                return await self._delete(self.log, namespace, name)
            except _Uncertain:
                pass
        return ServiceView.from_record(await (await self.full()).delete(namespace, name))

    async def _delete(self, log: LiteLog, namespace: str, name: str) -> ServiceView:
        subject = subject_for(namespace, name)
        for _ in range(_MAX_ATTEMPTS):
            state = await self._state(log, namespace, name)
            if state.live is None:
                raise NotFound(namespace, name)
            event_id = new_event_id()
            data = plain.encode_deleted(
                namespace,
                name,
                event_id=event_id,
                time=utc_now(),
                actor=self.actor,
                prev=state.prev,
            )
            try:
                await log.append(
                    subject, data, msg_id=event_id, expected_last_subject_seq=state.expected_seq
                )
            except WrongLastSequence:
                continue
            return state.live
        raise Conflict(namespace, name)
