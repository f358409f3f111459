"""One JetStream session: a connection, who the server says it is, and how its requests
and refusals become the registry's errors.

Everything the registry keeps in JetStream (the log, the liveness stream, the checkpoint
bucket, consumers) goes through a session: the JetStream API's JSON requests, stream
creation, conditional appends and direct gets on any stream, and the refusal guard. The
log, the liveness stream and the checkpoint store are each written over it, so none of
them needs the others. Server answers are untrusted input: what is not the JSON expected
becomes a ``ServerError``, never a crash.

The translation of the ``Connection`` protocol's errors into the registry's is stated
once, in ``Session.exchange``: too large is bad input, a lost connection fails the
operation, and silence (no responders, no answer) is ``Unanswered``, which reads and
writes retry for a while and the JSON API reports at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from events.subjects import parse_subject
from registry.errors import (
    InboxRefused,
    InvalidInput,
    NotARegistry,
    PermissionDenied,
    ServerError,
    Unreachable,
    WriteNotConfirmed,
)
from registry.jetstream.connection import (
    Connection,
    ConnectionLost,
    NoResponders,
    PayloadTooLarge,
    Reply,
)
from registry.jetstream.direct import stored_from_direct
from registry.jetstream.protocol import (
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    MESSAGE_TOO_LARGE,
    OWN_WRITE_IN_FLIGHT,
    STREAM_NOT_FOUND,
    WRONG_LAST_SEQUENCE,
    ApiError,
    api_error,
)
from registry.log.port import WrongLastSequence
from registry.log.stored import MSG_ID, StoredMessage

__all__ = [
    "SETTLE_S",
    "Session",
    "Unanswered",
    "as_int",
    "bad_ack",
    "json_answer",
    "write_operation",
]

T = TypeVar("T")

_VIOLATION = re.compile(r"permissions violation for (publish|subscription) to \"([^\"]*)", re.I)
_RETRY_PAUSE = 0.2
# How long ``skyctl init`` waits for a stream to answer: a replicated stream just made or
# scaled answers once its group has elected a leader, which a busy cluster may take
# seconds to do.
SETTLE_S = 30.0


class Unanswered(Exception):
    """Nobody answered (no responders: a leader election, a restart; or no reply in time).
    Reads and writes retry this for a while; a write that gives up may still be stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Session:
    """A connection to a JetStream server, and who the server says it is."""

    def __init__(self, conn: Connection, timeout: float, *, provisioning: bool = False) -> None:
        self.conn = conn
        self.timeout = timeout
        # Off only for ``skyctl init``, which is about to scale streams to the ask.
        self.provisioning = provisioning
        # Who the server says we are, and whether permissions limit us: asked at open, or
        # (a one-shot reader) when first needed (``identify``); until the server has
        # said, permissions are assumed, so refusals are reported as they happen.
        self.user: str | None = None
        self.user_id: str | None = None  # the user as the server knows it (a JWT user's key)
        self.restricted = True
        # What the server says this user may publish and subscribe (its read slots).
        self.permissions: dict[str, Any] | None = None
        self._denial_waiters: set[tuple[tuple[str, ...], asyncio.Future[str]]] = set()
        self._inbox_refused: str | None = None  # why no reply can ever arrive, if so
        self._asked: asyncio.Task[None] | None = None  # the question "who am I"
        conn.on_error(self._on_error)

    @classmethod
    async def open(
        cls, conn: Connection, timeout: float, *, provisioning: bool = False, identify: bool = True
    ) -> Session:
        """A session over ``conn``, once the server has said who we are (or, without
        ``identify``, at once: ``identify`` asks when something needs the answer)."""
        self = cls(conn, timeout, provisioning=provisioning)
        if identify:
            await self.identify()
        return self

    async def identify(self) -> None:
        """Ask the server who this connection is, once: what a write's actor, a consumer's
        read slot, a checkpoint's owner and a refusal's message need. A one-shot read of
        the current state needs none of it, and saves the round trip."""
        if self._asked is None and not self.conn.auth_required:
            # A server that authenticates nobody has no users and no permissions: nothing
            # to ask (its answer would name no one and limit nothing).
            self.restricted = False
            return
        if self._asked is None:
            self._asked = asyncio.ensure_future(self._who_am_i())
        await asyncio.shield(self._asked)

    @property
    def url(self) -> str:
        return self.conn.url

    async def close(self) -> None:
        if self._asked is not None and not self._asked.done():
            self._asked.cancel()
        await self.conn.close()

    # -- one exchange with the server ----------------------------------------------------

    async def exchange(
        self,
        awaitable: Awaitable[T],
        operation: str,
        *subjects: str,
        write_id: str | None = None,
        what: str = "event",
    ) -> T:
        """Await one exchange with the server, guarded against refusals on ``subjects``
        (prefixes), with the connection's errors translated: the one place that does.

        ``write_id`` makes a lost connection "not confirmed" (the write may be stored)
        rather than a failed operation; ``what`` names a message too large to send.
        """
        try:
            return await self.guarded(awaitable, operation, *subjects)
        except PayloadTooLarge as exc:
            raise InvalidInput(
                what, f"{exc.size} bytes", f"the server accepts at most {exc.limit} bytes"
            ) from None
        except NoResponders:
            raise Unanswered("no stream answered") from None
        except TimeoutError:
            raise Unanswered("no answer") from None
        except ConnectionLost as exc:
            if write_id is not None:
                raise WriteNotConfirmed(write_id, "connection closed") from None
            raise ServerError(f"{operation}: {exc}") from None

    async def retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        retry_for: float,
        give_up: Callable[[str], Exception],
    ) -> T:
        """``attempt()`` again while it is ``Unanswered``, for ``retry_for`` seconds; then
        the error ``give_up(reason)`` makes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                return await attempt()
            except Unanswered as silence:
                if loop.time() >= deadline:
                    raise give_up(silence.reason) from None
            await asyncio.sleep(_RETRY_PAUSE)

    # -- the JetStream API ---------------------------------------------------------------

    async def api(
        self, subject: str, body: Mapping[str, Any] | None, operation: str
    ) -> dict[str, Any]:
        """One JetStream API request: its JSON answer, or the registry's error for it."""
        try:
            return await self._api_once(subject, body, operation)
        except Unanswered as silence:
            raise self._unanswered_api(operation, silence.reason) from None

    async def _api_once(
        self, subject: str, body: Mapping[str, Any] | None, operation: str
    ) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        reply = await self.exchange(
            self.conn.request(subject, payload, timeout=self.timeout), operation, subject
        )
        answer = json_answer(reply, operation)
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ServerError(f"{operation}: the server's answer is malformed")
            if error.get("code") == 503:
                raise Unreachable(self.url, "the server does not have JetStream enabled")
            raise api_error(error, operation)
        return answer

    def _unanswered_api(self, operation: str, reason: str) -> Exception:
        if reason == "no stream answered":
            return Unreachable(self.url, "JetStream did not answer (is it enabled?)")
        return ServerError(f"{operation} timed out at {self.url}")

    async def stream_info(self, name: str, *, retry_for: float = 0.0) -> dict[str, Any]:
        """The stream's configuration and state. ``retry_for`` waits out silence: a
        replicated stream just made or scaled answers once its group has a leader."""
        subject, operation = f"$JS.API.STREAM.INFO.{name}", f"read stream {name}"
        return await self.retrying(
            lambda: self._api_once(subject, None, operation),
            retry_for,
            lambda reason: self._unanswered_api(operation, reason),
        )

    async def ensure_stream(
        self, name: str, config: Mapping[str, Any], operation: str, *, create: bool = True
    ) -> tuple[dict[str, Any], bool]:
        """The stream's configuration, creating the stream with ``config`` if it is missing
        (``operation`` names the creation in an error); and whether it was created.
        Without ``create`` (a read), a missing stream is ``NotARegistry``."""
        created = False
        try:
            # ``skyctl init`` waits for a busy cluster; an ordinary command fails fast.
            info = await self.stream_info(name, retry_for=SETTLE_S if self.provisioning else 0.0)
        except ApiError as exc:
            if exc.err_code != STREAM_NOT_FOUND:
                raise
            if not create:
                raise NotARegistry(self.url, name) from None
            info = await self.api(f"$JS.API.STREAM.CREATE.{name}", config, operation)
            created = True
        have = info.get("config")
        if not isinstance(have, dict):
            raise ServerError(f"read stream {name}: the server's answer has no configuration")
        return have, created

    # -- who we are --------------------------------------------------------------------

    async def _who_am_i(self) -> None:
        """Ask the server who this connection is and whether permissions limit it.

        Refusals are watched for meanwhile: a server that refuses this user replies on
        its inbox prefix says so at once (``InboxRefused``), rather than after the
        question's timeout, and one that refuses the question itself is an answer too.
        """
        self.restricted = True  # until the server says otherwise
        try:
            reply = await self.guarded(
                self.conn.request("$SYS.REQ.USER.INFO", timeout=1.0),
                "ask the server who this user is",
                "$SYS.REQ.USER.INFO",
            )
            data = json.loads(reply.data)["data"]
            if not isinstance(data, dict):
                raise TypeError
        except InboxRefused:
            raise
        except (TimeoutError, NoResponders, PermissionDenied, ValueError, KeyError, TypeError):
            # Not allowed to ask: assume limits, so refusals are reported as they happen.
            return
        except ConnectionLost as exc:
            raise Unreachable(self.url, str(exc)) from None
        self.restricted = False
        if not self.conn.auth_required:
            # The server took whatever name the client offered (`--user bob` on a server
            # without users): it proves nothing, so it names no one.
            return
        user = str(data.get("user") or "") or None
        name = data.get("user_name")  # JWT users: a name for humans beside the public key
        self.user = f"{name} ({user})" if name and user and name != user else user
        self.user_id = user
        permissions = data.get("permissions")
        self.restricted = bool(permissions)
        self.permissions = permissions if isinstance(permissions, dict) else None

    # -- appends and direct gets on any stream ---------------------------------------------

    async def append(
        self,
        stream: str,
        subject: str,
        data: bytes,
        *,
        msg_id: str,
        expected_last_subject_seq: int,
        retry_for: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """Append to ``stream`` if the subject's last sequence is still the expected one
        (``registry.log.port.Log.append``); a retry that finds its own write is success."""
        headers = {
            **(headers or {}),
            MSG_ID: msg_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected_last_subject_seq),
        }
        operation = write_operation(subject)

        async def attempt() -> int:
            reply = await self.exchange(
                self.conn.request(subject, data, headers=headers, timeout=min(self.timeout, 2.0)),
                operation,
                subject,
                write_id=msg_id,
            )
            ack = json_answer(reply, f"append to {subject}")
            error = ack.get("error")
            if error is None:
                return as_int(ack.get("seq"), 0) or bad_ack(subject)
            if not isinstance(error, dict):
                raise ServerError(f"append to {subject}: the server's answer is malformed")
            err_code = error.get("err_code")
            if err_code in WRONG_LAST_SEQUENCE:
                # On R1 a retry of a write that was stored but whose ack was lost
                # is rejected by the expectation, not deduplicated: is it ours?
                last = await self.last(stream, subject)
                if last is not None and last.msg_id == msg_id:
                    return last.seq
                raise WrongLastSequence(subject)
            if err_code == MESSAGE_TOO_LARGE:
                raise InvalidInput("event", f"{len(data)} bytes", "larger than the stream accepts")
            if err_code == OWN_WRITE_IN_FLIGHT:
                raise Unanswered("the first attempt still in flight")
            raise api_error(error, f"append to {subject}")

        return await self.retrying(
            attempt,
            retry_for,
            lambda reason: WriteNotConfirmed(msg_id, f"{reason} for {retry_for:.0f} s"),
        )

    async def last(
        self, stream: str, subject: str, *, retry_for: float = 10.0
    ) -> StoredMessage | None:
        """The subject's last message in ``stream``, or None if it has none (a direct get).

        Retried (it is only a read) while the server is briefly away: a restart, or a
        leader election in a cluster.
        """

        async def attempt() -> StoredMessage | None:
            reply = await self.exchange(
                self.conn.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", timeout=self.timeout),
                f"read {subject}",
                "$JS.API.DIRECT.GET.",
            )
            if reply.status == "404":
                return None
            if reply.status is not None:
                raise ServerError(f"read {subject} failed: {reply.status} {reply.description}")
            return stored_from_direct(reply.headers, reply.data)

        return await self.retrying(
            attempt,
            retry_for,
            lambda reason: ServerError(f"reading {subject}: {reason} from {self.url}"),
        )

    # -- refusals ------------------------------------------------------------------------

    async def guarded(self, awaitable: Awaitable[T], operation: str, *subjects: str) -> T:
        """Await ``awaitable``, failing at once with PermissionDenied if the server refuses
        this user a publish or subscribe on one of ``subjects`` (prefixes) meanwhile.

        A refused publish gets no reply, only an asynchronous error, so without this a
        refusal would surface as a timeout seconds later.
        """
        if self._inbox_refused is not None:
            _close_unawaited(awaitable)
            raise InboxRefused(operation, self._inbox_refused)
        if not self.restricted:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        entry = (subjects, waiter)
        self._denial_waiters.add(entry)
        try:
            pending: set[asyncio.Future[Any]] = {task, waiter}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done() and not task.done():
                task.cancel()
                if self._inbox_refused is not None:
                    raise InboxRefused(operation, self._inbox_refused)
                if self._asked is None:  # the refusal names the user: ask who that is
                    with contextlib.suppress(Exception):
                        await self.identify()
                raise PermissionDenied(operation, _describe_violation(waiter.result(), self.user))
            return task.result()
        finally:
            self._denial_waiters.discard(entry)
            if not task.done():
                task.cancel()

    def _on_error(self, text: str) -> None:
        match = _VIOLATION.search(text)
        if match is None:
            return
        # nats-py lower-cases the server's error text, subject included.
        subject = match.group(2)
        if match.group(1).lower() == "subscription" and subject.lower().startswith("_inbox"):
            # Replies can never arrive: every request waiting, and every later one, fails.
            who = f"user {self.user!r}" if self.user else "this user"
            self._inbox_refused = (
                f"the server does not let {who} receive replies on {subject}; give the "
                "inbox prefix it allows (--inbox-prefix, NATS_INBOX_PREFIX or a context's "
                "inbox_prefix, e.g. _INBOX_<user>)"
            )
            for _, waiter in list(self._denial_waiters):
                if not waiter.done():
                    waiter.set_result(text)
            return
        lowered = subject.lower()
        for prefixes, waiter in list(self._denial_waiters):
            if waiter.done():
                continue
            exact = next((p for p in prefixes if p.lower() == lowered), None)
            if (
                exact is not None
                or not prefixes
                or lowered.startswith(tuple(p.lower() for p in prefixes))
            ):
                waiter.set_result(text.replace(subject, exact) if exact else text)


def json_answer(reply: Reply, operation: str) -> dict[str, Any]:
    """A reply's JSON object, or a ``ServerError`` saying it is not one."""
    try:
        answer = json.loads(reply.data)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        status = f" (status {reply.status})" if reply.status else ""
        raise ServerError(f"{operation}: the server's answer is not a JSON object{status}")
    return answer


def as_int(value: object, default: int) -> int:
    """An integer from a server's JSON, or ``default`` when it is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def write_operation(subject: str) -> str:
    """A write to ``subject`` in the words of a refusal."""
    try:
        namespace, _ = parse_subject(subject)
    except ValueError:
        return f"write {subject}"
    return f'create or delete services in namespace "{namespace}"'


def bad_ack(subject: str) -> int:
    """Fail an acknowledgement that names no sequence (callers ``or`` it in)."""
    raise ServerError(f"append to {subject}: the server's acknowledgement has no sequence")


def _close_unawaited(awaitable: Awaitable[Any]) -> None:
    """A coroutine that will not run is closed, so Python does not warn about it."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _describe_violation(text: str, user: str | None) -> str:
    match = _VIOLATION.search(text)
    who = f"user {user!r}" if user else "this user"
    if match is None:
        return f"the server refused {who}: {text}"
    verb = "publish" if match.group(1).lower() == "publish" else "subscribe"
    return f"the server does not let {who} {verb} to {match.group(2)}"
