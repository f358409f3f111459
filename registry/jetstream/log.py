"""The service log in a JetStream stream: ``registry.log.port.Log``, implemented once.

JetStream is JSON and headers over core NATS, so everything here (the stream check,
conditional idempotent appends, atomic batches, direct gets, ordered reads) is written
over a ``Session`` and works the same over either client. The checkpoint bucket and the
liveness stream live on the same session, beside the log rather than inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from events.sites import MirrorOf, mirror_of
from events.stream import StreamSpec, consumer_limits
from registry.errors import (
    NotARegistry,
    ServerError,
    SiteReadOnly,
    StreamMisconfigured,
    StreamOutdated,
    WriteNotConfirmed,
)
from registry.jetstream.checkpoints import ANONYMOUS, CheckpointStore
from registry.jetstream.connection import Connection, Reply
from registry.jetstream.direct import before_many, last_many
from registry.jetstream.protocol import (
    BATCH_COMMIT,
    BATCH_DUPLICATE_ID,
    BATCH_ID,
    BATCH_INCOMPLETE_TEXT,
    BATCH_SEQUENCE,
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    OWN_WRITE_IN_FLIGHT,
    WRONG_LAST_SEQUENCE,
    api_error,
    outdated,
    stream_problems,
)
from registry.jetstream.session import (
    Session,
    Unanswered,
    as_int,
    bad_ack,
    json_answer,
    write_operation,
)
from registry.jetstream.tail import Tail
from registry.log.port import MAX_BATCH, ConditionalMessage, WrongLastSequence
from registry.log.reader import FROM_THE_START, Start
from registry.log.stored import MSG_ID, StoredMessage

if TYPE_CHECKING:
    from registry.jetstream.liveness import JetStreamLiveness
    from registry.jetstream.membership import JetStreamMembership

__all__ = ["JetStreamLog"]

T = TypeVar("T")


class JetStreamLog:
    """The stream that holds the service log, on one session."""

    def __init__(
        self,
        conn: Connection,
        spec: StreamSpec,
        timeout: float,
        *,
        provisioning: bool = False,
        create: bool = True,
    ) -> None:
        self.session = Session(conn, timeout, provisioning=provisioning)
        self.spec = spec
        # Whether this log may create the registry's streams where they are missing: a
        # read never does (``NotARegistry`` instead), so pointing one at any JetStream
        # server leaves nothing behind there.
        self.create = create
        # Whether open() had to create the stream, and the stream's replicas (what the
        # registry's other streams, the checkpoint bucket, are created with).
        self.created_stream = False
        self.stream_replicas = spec.replicas
        self._checked: asyncio.Task[None] | None = None  # the stream check, once
        self._checkpoints: CheckpointStore | None = None
        self._liveness: JetStreamLiveness | None = None
        self._membership: JetStreamMembership | None = None
        self._site_memberships: dict[str, JetStreamMembership] = {}
        # Set by the stream check when this server is a site: its log is a mirror of the
        # hub's, read here and written only at the hub (``events.sites``).
        self.site: MirrorOf | None = None

    @classmethod
    async def open(
        cls,
        conn: Connection,
        *,
        spec: StreamSpec | None = None,
        api_timeout: float = 5.0,
        provisioning: bool = False,
        create: bool = True,
        lazy: bool = False,
        identify: bool = True,
    ) -> JetStreamLog:
        """Ask the server who we are, then find (or, with ``create``, create) the stream
        and check it.

        ``lazy`` (a one-shot command) does neither at open: the stream is checked before
        anything but a direct get touches it (``checked``), and the question who we are
        waits for something that needs the answer, unless ``identify`` (the caller must
        know at once whether the server lets it receive replies). So ``skyctl get NAME``
        is one request. Skipping the check for direct gets is safe: a direct get reads the
        last message the server holds for a subject, which no setting the check refuses
        (limits, purges, deletes, a subject transform: what could lose or hide *older*
        events) can make wrong; every append, every ordered read, and every read a direct
        get cannot answer (no stream, direct gets not allowed) checks first, so a stream
        that could lose events is still refused before anything is written to it or read
        from its history (invariant 6)."""
        self = cls(
            conn, spec or StreamSpec(), api_timeout, provisioning=provisioning, create=create
        )
        try:
            self.session = await Session.open(
                conn, api_timeout, provisioning=provisioning, identify=identify or not lazy
            )
            if not lazy:
                await self.checked()
        except BaseException:
            await self.close()
            raise
        return self

    async def checked(self) -> None:
        """Find (or create) the stream and check it, once (``open``, with ``lazy``)."""
        if self._checked is None:
            self._checked = asyncio.ensure_future(self._ensure_stream())
        await asyncio.shield(self._checked)

    @property
    def conn(self) -> Connection:
        return self.session.conn

    @property
    def url(self) -> str:
        return self.session.url

    @property
    def is_connected(self) -> bool:
        return self.session.conn.is_connected

    async def close(self) -> None:
        if self._checked is not None and not self._checked.done():
            self._checked.cancel()
        await self.session.close()

    async def __aenter__(self) -> JetStreamLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def authenticated_user(self) -> str | None:
        await self.session.identify()
        return self.session.user

    # -- the stream ----------------------------------------------------------------------

    def stream_config(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "name": spec.name,
            "description": "SkyFlow service registry: the event log (never trimmed)",
            "subjects": list(spec.subjects),
            "discard": "old",
            "num_replicas": spec.replicas,
            "max_msg_size": spec.max_msg_size,
            "duplicate_window": int(spec.duplicate_window_s * 1e9),
            "allow_direct": True,
            "consumer_limits": consumer_limits(),
            **spec.required,
        }

    async def _ensure_stream(self) -> None:
        name = self.spec.name
        config, self.created_stream = await self.session.ensure_stream(
            name,
            self.stream_config(),
            f"create the registry's stream {name} (an admin must run skyctl once first)",
            create=self.create,
        )
        self.check_stream(config)
        self.site = mirror_of(config)
        self.stream_replicas = as_int(config.get("num_replicas"), 1)

    def check_stream(self, config: Mapping[str, Any]) -> None:
        """Refuse a stream whose settings could drop or rewrite events (invariant 6)."""
        provisioning = self.session.provisioning
        problems = stream_problems(self.spec, config, provisioning=provisioning)
        if problems:
            raise StreamMisconfigured(self.spec.name, problems)
        lacking = [] if provisioning else outdated(self.spec, config)
        if lacking:
            raise StreamOutdated(self.spec.name, lacking)

    async def last_sequence(self) -> int:
        await self.checked()  # (a missing stream is then NotARegistry)
        state = (await self.session.stream_info(self.spec.name)).get("state")
        return as_int(state.get("last_seq") if isinstance(state, dict) else None, 0)

    # -- writing ---------------------------------------------------------------------

    async def append(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str,
        expected_last_subject_seq: int,
        retry_for: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        await self.checked()
        self._refuse_at_a_site()
        return await self.session.append(
            self.spec.name,
            subject,
            data,
            msg_id=msg_id,
            expected_last_subject_seq=expected_last_subject_seq,
            retry_for=retry_for,
            headers=headers,
        )

    async def append_batch(
        self, messages: Sequence[ConditionalMessage], *, retry_for: float = 10.0
    ) -> list[int]:
        """All of ``messages`` or none, as one JetStream atomic batch (``Log.append_batch``).

        Every message but the last is published without waiting; the last commits, and
        its reply says whether the server stored all of them. A batch the server never
        sees committed (this process died, or the connection dropped) is abandoned by the
        server after 10 s and stores nothing.
        """
        await self.checked()
        self._refuse_at_a_site()
        if len(messages) == 1:
            one = messages[0]
            seq = await self.append(
                one.subject,
                one.data,
                msg_id=one.msg_id,
                expected_last_subject_seq=one.expected_last_subject_seq,
                retry_for=retry_for,
                headers=one.headers,
            )
            return [seq]
        subjects = [m.subject for m in messages]
        if not 1 < len(messages) <= MAX_BATCH or len(set(subjects)) != len(subjects):
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} messages on distinct subjects")
        first = messages[0]

        async def attempt() -> list[int]:
            reply = await self.session.exchange(
                self._send_batch(messages),
                write_operation(subjects[0]),
                *dict.fromkeys(subjects),
                write_id=first.msg_id,
            )
            ack = json_answer(reply, f"append to {subjects[0]}")
            error = ack.get("error")
            if error is None:
                last = as_int(ack.get("seq"), 0) or bad_ack(subjects[0])
                return list(range(last - len(messages) + 1, last + 1))
            if not isinstance(error, dict):
                raise ServerError(f"append to {subjects[0]}: the server's answer is malformed")
            err_code = error.get("err_code")
            if err_code in WRONG_LAST_SEQUENCE or err_code == BATCH_DUPLICATE_ID:
                # Either someone wrote first, or an earlier attempt of ours was stored
                # and its ack lost: then every message is there under our ids. (A
                # replicated stream says "duplicate message id" of such a retry.)
                stored = await self.last_many(subjects)
                mine = [stored.get(m.subject) for m in messages]
                if all(
                    s is not None and s.msg_id == m.msg_id
                    for s, m in zip(mine, messages, strict=True)
                ):
                    return [s.seq for s in mine if s is not None]
                if err_code == BATCH_DUPLICATE_ID:
                    raise api_error(error, f"append to {subjects[0]}")
                raise WrongLastSequence(subjects[0])
            if err_code == OWN_WRITE_IN_FLIGHT:
                # An earlier attempt's ids are still being proposed: they may yet be
                # stored, so wait for them, as a single append does.
                raise Unanswered("the first attempt still in flight")
            raise api_error(error, f"append to {subjects[0]}")

        return await self.session.retrying(
            attempt,
            retry_for,
            lambda reason: WriteNotConfirmed(first.msg_id, f"{reason} for {retry_for:.0f} s"),
        )

    def _refuse_at_a_site(self) -> None:
        """A site's log is the hub's, mirrored: a change asked here is refused, naming
        the hub, before anything is sent (the mirror has no subjects to take it)."""
        if self.site is not None:
            raise SiteReadOnly(self.site.site, self.site.hub_domain, self.site.hub_url)

    async def _send_batch(self, messages: Sequence[ConditionalMessage]) -> Reply:
        conn = self.session.conn
        timeout = self.session.timeout
        batch = uuid.uuid4().hex
        last = len(messages)
        for index, message in enumerate(messages, 1):
            headers = {
                **message.headers,
                MSG_ID: message.msg_id,
                EXPECTED_LAST_SUBJECT_SEQUENCE: str(message.expected_last_subject_seq),
                BATCH_ID: batch,
                BATCH_SEQUENCE: str(index),
            }
            if index < last:
                await conn.publish(message.subject, message.data, headers=headers)
            else:
                headers[BATCH_COMMIT] = "1"
                reply = await conn.request(
                    message.subject, message.data, headers=headers, timeout=min(timeout, 5.0)
                )
                if self.session.restricted and BATCH_INCOMPLETE_TEXT in reply.data[:200]:
                    # A message the server refused us (a namespace this user may not write)
                    # gets no reply, only an error on the connection, while the commit that
                    # follows it says the batch is incomplete. The server sent that error
                    # first: a round trip makes sure it has been read (and a moment lets
                    # the client's error callback run), so ``guarded`` reports the refusal
                    # rather than the incomplete batch.
                    await conn.flush(timeout)
                    await asyncio.sleep(0.05)
                return reply
        raise AssertionError("unreachable: a batch has a last message")

    # -- reading ---------------------------------------------------------------------

    async def last(self, subject: str, *, retry_for: float = 10.0) -> StoredMessage | None:
        return await self._direct(
            lambda retry: self.session.last(self.spec.name, subject, retry_for=retry), retry_for
        )

    async def last_many(
        self, subjects: Sequence[str], *, retry_for: float = 10.0
    ) -> dict[str, StoredMessage]:
        conn, timeout = self.session.conn, self.session.timeout
        return await self._direct(
            lambda retry: self._read_services(
                lambda: last_many(conn, self.spec.name, subjects, timeout), retry
            ),
            retry_for,
        )

    async def before_many(
        self, places: Sequence[tuple[str, int]], *, retry_for: float = 10.0
    ) -> dict[tuple[str, int], StoredMessage | None]:
        conn, timeout = self.session.conn, self.session.timeout
        return await self._direct(
            lambda retry: self._read_services(
                lambda: before_many(conn, self.spec.name, places, timeout), retry
            ),
            retry_for,
        )

    async def _read_services(self, read: Callable[[], Awaitable[T]], retry_for: float) -> T:
        """A batched direct get, retried while nobody answers."""
        session = self.session
        return await session.retrying(
            lambda: session.exchange(read(), "read services", "$JS.API.DIRECT.GET."),
            retry_for,
            lambda reason: ServerError(f"reading services: {reason} from {session.url}"),
        )

    async def _direct(self, read: Callable[[float], Awaitable[T]], retry_for: float) -> T:
        """A direct get (``read(retry_for)``), which needs no stream check (``open``):
        unless the stream has been checked, a read nobody answers at once is checked then
        (a missing stream, or one that does not allow direct gets, is reported as such),
        before it is retried for ``retry_for``."""
        if self._checked is None:
            try:
                return await read(0.0)
            except ServerError:
                await self.checked()
        return await read(retry_for)

    def read(
        self, filters: Sequence[str], start: Start = FROM_THE_START, *, heartbeat: float = 1.0
    ) -> Tail:
        return Tail(
            self.session, self.spec.name, filters, start, heartbeat=heartbeat, before=self.checked
        )

    async def checkpoints(self) -> CheckpointStore:
        await self.checked()  # (the bucket is made with the stream's replicas)
        if self._checkpoints is None:
            await self.session.identify()
            self._checkpoints = await CheckpointStore.open(
                self.session, self.stream_replicas, self.session.user_id or ANONYMOUS
            )
        return self._checkpoints

    async def liveness(self) -> JetStreamLiveness:
        if self._liveness is None:
            # Imported here: one-shot commands on services never touch the liveness stream.
            from events.liveness import TasksSpec
            from registry.jetstream.liveness import JetStreamLiveness

            # (Made if missing even by a read: the service stream says this is a registry,
            # and a registry's liveness stream is what any announce would make. Made with
            # the service stream's replicas, so that stream is read first; a lazy reader
            # looks for the liveness stream as it is, and reads the service stream only
            # if it has to make it.)
            if self._checked is None:
                with contextlib.suppress(NotARegistry):
                    self._liveness = await JetStreamLiveness.open(
                        self.session, TasksSpec(replicas=self.stream_replicas), create=False
                    )
            if self._liveness is None:
                await self.checked()
                self._liveness = await JetStreamLiveness.open(
                    self.session, TasksSpec(replicas=self.stream_replicas)
                )
        return self._liveness

    async def membership(
        self, *, create: bool = False, site: str | None = None
    ) -> JetStreamMembership:
        if site is not None:
            return await self._site_membership(site)
        if self._membership is None:
            from events.membership import MembershipSpec
            from registry.jetstream.membership import JetStreamMembership

            await self.checked()
            spec = MembershipSpec(replicas=self.stream_replicas)
            self._membership = await JetStreamMembership.open(self.session, spec, create=create)
        return self._membership

    async def _site_membership(self, site: str) -> JetStreamMembership:
        """The hub's copy of ``site``'s membership history (``events.sites``), read only."""
        from events.membership import MembershipSpec
        from events.sites import SITE_MEMBERSHIP_PREFIX, site_subject
        from registry.jetstream.membership import JetStreamMembership

        found = self._site_memberships.get(site)
        if found is None:
            spec = MembershipSpec(name=f"{SITE_MEMBERSHIP_PREFIX}{site}")
            prefix = site_subject(site, "")
            found = await JetStreamMembership.open(self.session, spec, create=False, prefix=prefix)
            self._site_memberships[site] = found
        return found
