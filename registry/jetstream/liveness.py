"""The liveness stream in JetStream: ``registry.log.liveness.Liveness``, implemented once.

Heartbeats are plain publishes with a ``Nats-TTL`` header into ``SKYFLOW_TASKS`` (one
message per subject); only the last of each round is a request, whose acknowledgement
vouches for the round: a round of fifty thousand heartbeats costs one round trip, not
fifty thousand (measured: 87,000 heartbeats/s this way, about 6,000/s awaiting each ack).

Facts of nats-server 2.15 this is built on (``tests/jetstream/test_liveness_stream.py`` keeps them):
- without ``max_msgs_per_subject: 1`` the server stretches a short TTL to the marker TTL;
- ``Nats-TTL`` takes whole seconds;
- a subject delete marker reaches a consumer 0.16-0.27 s after the TTL runs out;
- turning markers on turns roll-ups and purges on, and they cannot be turned off: any
  writer of the stream may send ``Nats-Rollup: all``, which empties it without a marker.
  So nobody writes the liveness stream: it has no subjects and sources one intake stream
  per namespace (``events.liveness.IntakeSpec``), which has no markers and refuses
  roll-ups, purges and deletes. A sourced copy keeps its ``Nats-TTL``, counted from its
  arrival; the liveness stream places the markers. Readers still read the current state
  again after a roll-up (only an admin can send one now) and at a regular interval.

Facts of the intake path (measured 2026-12-05 on 2.15.1; ``tests/security/test_tenants.py``
and ``tests/jetstream/test_liveness_stream.py`` keep them):
- an intake refuses ``Nats-Rollup`` (any case) with 10111 and stores nothing;
- at ``max_msgs`` with ``discard: new`` a new subject is refused with 10077 while a renewal
  of a subject it holds is stored;
- the sourced copy arrives milliseconds after the intake's ack (6.5-30 ms after the last of
  50,000 pipelined heartbeats), with ``Nats-Stream-Source: <intake> <seq> ...``;
- on a cluster, a new leader of the liveness stream sets its sources up again, and a setup
  request nobody answers is retried after 30 s (nats-server ``srcConsumerWaitTime``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from events.liveness import (
    INTAKE_PREFIX,
    MAX_TTL_S,
    TASK_PREFIX,
    IntakeSpec,
    TasksSpec,
    intake_stream,
    namespace_of,
)
from registry.errors import ServerError, StreamMisconfigured
from registry.jetstream.connection import Reply
from registry.jetstream.protocol import ApiError, api_error
from registry.jetstream.session import Session, Unanswered, json_answer
from registry.jetstream.tail import Tail
from registry.log.reader import Start

if TYPE_CHECKING:
    from registry.log.liveness import ExpiringMessage

__all__ = ["TTL_HEADER", "JetStreamLiveness", "intake_problems", "liveness_problems"]

TTL_HEADER = "Nats-TTL"
_OPERATION = "announce tasks"
_log = logging.getLogger(__name__)


class JetStreamLiveness:
    """The liveness stream, on a session (the log's, for the registry)."""

    def __init__(self, session: Session, spec: TasksSpec) -> None:
        self._session = session
        self.spec = spec
        self.created = False
        self._sources: set[str] = set()  # intake streams known to feed the liveness stream
        self._sent: dict[str, bytes] = {}  # each subject's last body: a renewal repeats it

    @classmethod
    async def open(
        cls, session: Session, spec: TasksSpec, *, create: bool = True
    ) -> JetStreamLiveness:
        """Find (or, with ``create``, create) the stream and check it can decide liveness."""
        self = cls(session, spec)
        name = self.spec.name
        try:
            config, self.created = await session.ensure_stream(
                name,
                self.spec.config(),
                f"create the liveness stream {name} (an admin must run skyctl init first)",
                create=create,
            )
        except ApiError as exc:
            raise ServerError(f"create the liveness stream {name}: {exc}") from None
        problems = liveness_problems(self.spec, config, check_replicas=not session.provisioning)
        if problems:
            raise StreamMisconfigured(name, problems)
        if self.created:
            # Made again (scaled, or replacing an older one): the intakes already there
            # feed it as before.
            for intake in await self._existing_intakes():
                await self._add_source(intake)
        self._sources = set(_sourced(config))
        return self

    async def _existing_intakes(self) -> tuple[str, ...]:
        """Intake streams already on the server (a liveness stream made again sources them)."""
        try:
            answer = await self._session.api(
                "$JS.API.STREAM.NAMES", {"subject": f"{TASK_PREFIX}.>"}, "list intake streams"
            )
        except (ApiError, ServerError):
            return ()  # not allowed to list: intakes are added as announcers need them
        names = answer.get("streams") or []
        return tuple(sorted(n for n in names if isinstance(n, str) and n.startswith(INTAKE_PREFIX)))

    async def ensure_intake(self, namespace: str, *, max_subjects: int | None = None) -> bool:
        """Make sure ``namespace`` has its intake stream and the liveness stream sources it;
        whether the intake was created. Needs the rights an admin has: a team's intake is
        made for it by ``skyctl init --namespace``, or on first announce where nobody is
        restricted."""
        spec = IntakeSpec(namespace, self.spec.replicas)
        if max_subjects is not None:
            spec = IntakeSpec(namespace, self.spec.replicas, max_subjects=max_subjects)
        name = spec.name
        try:
            config, created = await self._session.ensure_stream(
                name, spec.config(), f"create the intake stream {name}"
            )
        except ApiError as exc:
            raise ServerError(
                f"tasks cannot be announced in namespace {namespace!r}: its intake stream "
                f"{name} is missing and could not be made ({exc}); an admin runs "
                f"skyctl init --namespace {namespace}"
            ) from None
        problems = intake_problems(spec, config)
        if problems:
            raise StreamMisconfigured(name, problems)
        await self._add_source(name)
        self._sources.add(name)
        return created

    async def _add_source(self, intake: str) -> None:
        """Add ``intake`` to the liveness stream's sources. A stream update replaces the
        whole configuration, so two made at once may lose one's source: each reads back
        and adds its own again until it is there."""
        stream = self.spec.name
        for attempt in range(20):
            info = await self._session.stream_info(stream, retry_for=self._session.timeout)
            config = dict(info.get("config") or {})
            if intake in _sourced(config):
                return
            sources = [s for s in config.get("sources") or [] if isinstance(s, dict)]
            config["sources"] = [*sources, {"name": intake}]
            await self._session.api(
                f"$JS.API.STREAM.UPDATE.{stream}", config, f"source {intake} into {stream}"
            )
            await asyncio.sleep(0.05 * attempt * random.random())
        raise ServerError(f"could not add {intake} to the sources of {stream}")

    @property
    def url(self) -> str:
        return self._session.url

    async def publish(self, messages: Sequence[ExpiringMessage], *, timeout: float = 2.0) -> None:
        """Each namespace's messages into its intake, the last of each as a request whose
        acknowledgement vouches for the namespace's round. An intake that is missing is
        made (where this user may) and the round sent again."""
        by_namespace: dict[str, list[ExpiringMessage]] = {}
        for message in messages:
            try:
                namespace = namespace_of(message.subject)
            except ValueError:
                raise ServerError(
                    f"{_OPERATION}: {message.subject[:200]!r} is not a task subject"
                ) from None
            by_namespace.setdefault(namespace, []).append(message)
        for namespace, group in by_namespace.items():
            if intake_stream(namespace) not in self._sources:
                # Looked up (or made) before the first heartbeat, not after a silence: a
                # plain subscriber on the subject would keep "no responders" from coming.
                await self.ensure_intake(namespace)
            await self._publish(group, timeout)

    async def _publish(self, messages: Sequence[ExpiringMessage], timeout: float) -> None:
        """One namespace's round into its intake."""
        conn = self._session.conn

        async def send() -> Reply:
            *rest, last = messages
            for message in rest:
                await conn.publish(message.subject, message.data, headers=_ttl(message))
            return await conn.request(last.subject, last.data, headers=_ttl(last), timeout=timeout)

        try:
            reply = await self._session.exchange(send(), _OPERATION, f"{TASK_PREFIX}.", what="task")
        except Unanswered as silence:
            raise ServerError(f"{_OPERATION}: {silence.reason} from {self.url}") from None
        last = messages[-1]
        ack = json_answer(reply, _OPERATION)
        error = ack.get("error")
        if isinstance(error, dict):
            raise api_error(error, f"{_OPERATION} ({last.subject})")
        seq = ack.get("seq")
        if error is not None or not isinstance(seq, int):
            raise ServerError(f"{_OPERATION}: the server's acknowledgement is malformed")
        news = [m for m in messages if self._sent.get(m.subject) != m.data]
        for message in messages:
            self._sent[message.subject] = message.data
        if len(self._sent) > 4 * len(messages) + 1024:
            self._sent = {m.subject: m.data for m in messages}
        if news:
            await self._await_sourced(last.subject, str(ack.get("stream")), seq, timeout)

    async def _await_sourced(self, subject: str, intake: str, seq: int, within: float) -> None:
        """Wait until the liveness stream holds the intake's message ``seq`` (or a later one)
        on ``subject``: a task that joins, changes or leaves is visible to every reader once
        its announce returns, as it was when announcers wrote the liveness stream itself.
        Renewals do not wait. Sourcing takes milliseconds; past ``within`` it is left to
        arrive on its own."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = 0.002
        while True:
            stored = await self._session.last(self.spec.name, subject, retry_for=0.0)
            if stored is not None and _source_seq(stored.headers, intake) >= seq:
                return
            if loop.time() + pause > deadline:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def read(self, filters: Sequence[str]) -> Tail:
        return Tail(self._session, self.spec.name, filters, Start("last_per_subject"), restart=True)

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        return self._session.conn.on_reconnect(listener)

    async def serve(
        self, subject: str, answer: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[], Awaitable[None]]:
        conn = self._session.conn
        answering: set[asyncio.Task[None]] = set()

        async def respond(reply: str, data: bytes) -> None:
            try:
                body = await answer(data)
                await conn.publish(reply, body)
            except Exception:  # one bad request must not stop the others
                _log.warning("answering a request on %s failed", subject, exc_info=True)

        def on_msg(_subject: str, reply: str, _headers: Any, data: bytes) -> None:
            if reply:  # a request; anything else is nobody's business here
                job = asyncio.ensure_future(respond(reply, data))
                answering.add(job)
                job.add_done_callback(answering.discard)

        async def subscribe() -> Any:
            sub = await conn.subscribe(subject, on_msg)
            # A refused subscription is an asynchronous error: the round trip brings it.
            await conn.flush(2.0)
            await asyncio.sleep(0)
            return sub

        operation = f"answering requests on {subject}"
        sub = await self._session.guarded(subscribe(), operation, subject)

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            for job in list(answering):
                job.cancel()

        return stop

    async def ask(self, subject: str, data: bytes, *, timeout: float) -> bytes | None:
        conn = self._session.conn
        try:
            reply = await self._session.exchange(
                conn.request(subject, data, timeout=timeout), f"asking {subject}", subject
            )
        except Unanswered:
            return None
        return reply.data


def _source_seq(headers: Mapping[str, str], intake: str) -> int:
    """The intake sequence a sourced copy came from (``Nats-Stream-Source: <stream> <seq>
    ...``), or 0 if it came from elsewhere or says nothing readable."""
    parts = (headers.get("Nats-Stream-Source") or "").split(" ", 2)
    if len(parts) >= 2 and parts[0] == intake and parts[1].isdigit() and len(parts[1]) < 20:
        return int(parts[1])
    return 0


def _sourced(config: Mapping[str, Any]) -> list[str]:
    """The streams a configuration sources, by name."""
    return [
        str(s.get("name"))
        for s in config.get("sources") or []
        if isinstance(s, dict) and isinstance(s.get("name"), str)
    ]


def intake_problems(spec: IntakeSpec, config: Mapping[str, Any]) -> list[str]:
    """Every setting of an intake stream that would let a team reach past its namespace
    (roll-ups, purges, deletes, other subjects) or grow without bound, one line each."""
    problems: list[str] = []
    fix = f"delete {spec.name} and run skyctl init --namespace {spec.namespace}"
    if config.get("allow_rollup_hdrs"):
        problems.append(f"allow_rollup_hdrs is on: a roll-up would erase tasks ({fix})")
    if not config.get("deny_purge") or not config.get("deny_delete"):
        problems.append(f"purges or deletes are allowed: tasks could be erased ({fix})")
    if config.get("subject_delete_marker_ttl"):
        problems.append(f"it places subject delete markers, which allow roll-ups ({fix})")
    if list(config.get("subjects") or []) != [spec.subject]:
        problems.append(f"its subjects are {config.get('subjects')}, not [{spec.subject}] ({fix})")
    if config.get("max_msgs_per_subject") != 1 or not config.get("allow_msg_ttl"):
        problems.append(f"it does not keep one expiring message per subject ({fix})")
    for limit in ("max_msgs", "max_bytes"):
        value = config.get(limit)
        if not isinstance(value, int) or value <= 0:
            problems.append(f"{limit} is unbounded: one team could fill the server ({fix})")
    return problems


def _ttl(message: ExpiringMessage) -> Mapping[str, str]:
    return {TTL_HEADER: str(message.ttl)}


def liveness_problems(
    spec: TasksSpec, config: Mapping[str, Any], *, check_replicas: bool = True
) -> list[str]:
    """Every setting of the liveness stream that would keep the dead live or lose the
    living, each with what it would do and how to fix it (one line each)."""
    problems: list[str] = []

    def problem(setting: str, why: str, fix: str) -> None:
        problems.append(f"{setting}: {why} ({fix})")

    if not config.get("allow_msg_ttl"):
        problem("allow_msg_ttl is off", "heartbeats would never expire", "recreate the stream")
    if config.get("max_msgs_per_subject") != 1:
        problem(
            f"max_msgs_per_subject is {config.get('max_msgs_per_subject')}, must be 1",
            "the server stretches a short TTL to the marker TTL, so the dead linger",
            "nats stream edit --max-msgs-per-subject 1",
        )
    marker = config.get("subject_delete_marker_ttl")
    if not isinstance(marker, int) or marker < 1_000_000_000:
        problem(
            "subject_delete_marker_ttl is not set",
            "readers are never told that a task expired",
            "recreate the stream with skyctl init",
        )
    if (config.get("retention") or "limits") != "limits":
        problem(
            f"retention is {config.get('retention')}",
            "heartbeats are deleted once read",
            "recreate it with limits retention",
        )
    max_age = config.get("max_age") or 0
    if isinstance(max_age, int) and 0 < max_age < MAX_TTL_S * 1_000_000_000:
        problem(
            f"max_age is {max_age / 1e9:g}s",
            "a task with a longer TTL expires early",
            f"set it to {MAX_TTL_S}s",
        )
    if config.get("subject_transform") or config.get("mirror"):
        problem(
            "it transforms or mirrors subjects",
            "heartbeats are stored where readers do not look, or come from elsewhere",
            "use a stream of its own",
        )
    for source in config.get("sources") or []:
        name = source.get("name") if isinstance(source, dict) else None
        if (
            not isinstance(name, str)
            or not name.startswith(INTAKE_PREFIX)
            or any(source.get(k) for k in ("external", "subject_transforms", "filter_subject"))
        ):
            problem(
                f"it sources {str(name)[:80]!r}",
                "only the namespaces' intake streams may feed it, whole",
                "remove that source (nats stream edit)",
            )
    # A stream made with neither subjects nor sources gets its own name as its subject
    # (the server's default): no role but admin may publish there.
    if [s for s in config.get("subjects") or [] if s != spec.name]:
        problem(
            f"it has subjects {config.get('subjects')}",
            "whoever may publish there can roll up every namespace's tasks at once",
            "skyctl init makes it again, fed by one intake stream per namespace",
        )
    have = config.get("num_replicas") or 1
    if check_replicas and isinstance(have, int) and have < spec.replicas:
        problem(
            f"num_replicas is {have}, asked for {spec.replicas}",
            "fewer copies than asked survive fewer failed servers",
            f"skyctl init --replicas {spec.replicas}",
        )
    return problems
