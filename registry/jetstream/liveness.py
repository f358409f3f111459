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
  writer may send ``Nats-Rollup: all``, which empties the stream without a marker. Readers
  therefore read the current state again when they see one, and at a regular interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events.liveness import MAX_TTL_S, TASK_PREFIX, TasksSpec
from registry.errors import ServerError, StreamMisconfigured
from registry.jetstream.connection import Reply
from registry.jetstream.protocol import api_error
from registry.jetstream.session import Session, Unanswered, json_answer
from registry.jetstream.tail import Tail
from registry.log.liveness import ExpiringMessage
from registry.log.reader import Start

__all__ = ["TTL_HEADER", "JetStreamLiveness", "liveness_problems"]

TTL_HEADER = "Nats-TTL"
_OPERATION = "announce tasks"


class JetStreamLiveness:
    """The liveness stream, on a session (the log's, for the registry)."""

    def __init__(self, session: Session, spec: TasksSpec) -> None:
        self._session = session
        self.spec = spec
        self.created = False

    @classmethod
    async def open(cls, session: Session, spec: TasksSpec) -> JetStreamLiveness:
        """Find (or create) the stream and check it can decide liveness."""
        self = cls(session, spec)
        name = self.spec.name
        config, self.created = await session.ensure_stream(
            name,
            self.spec.config(),
            f"create the liveness stream {name} (an admin must run skyctl init first)",
        )
        problems = liveness_problems(self.spec, config, check_replicas=not session.provisioning)
        if problems:
            raise StreamMisconfigured(name, problems)
        return self

    @property
    def url(self) -> str:
        return self._session.url

    async def publish(self, messages: Sequence[ExpiringMessage], *, timeout: float = 2.0) -> None:
        if not messages:
            return
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
        if error is not None or not isinstance(ack.get("seq"), int):
            raise ServerError(f"{_OPERATION}: the server's acknowledgement is malformed")

    def read(self, filters: Sequence[str]) -> Tail:
        return Tail(self._session, self.spec.name, filters, Start("last_per_subject"), restart=True)

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        return self._session.conn.on_reconnect(listener)


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
    if config.get("subject_transform") or config.get("mirror") or config.get("sources"):
        problem(
            "it transforms, mirrors or sources subjects",
            "heartbeats are stored where readers do not look, or come from elsewhere",
            "use a stream of its own",
        )
    if f"{TASK_PREFIX}.>" not in (config.get("subjects") or []):
        problem(
            f"subjects {config.get('subjects')} lack {TASK_PREFIX}.>",
            "heartbeats would not be stored",
            "add it (nats stream edit)",
        )
    have = config.get("num_replicas") or 1
    if check_replicas and isinstance(have, int) and have < spec.replicas:
        problem(
            f"num_replicas is {have}, asked for {spec.replicas}",
            "fewer copies than asked survive fewer failed servers",
            f"skyctl init --replicas {spec.replicas}",
        )
    return problems
