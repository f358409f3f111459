"""The service log in a JetStream stream: ``registry.log.port.Log``, implemented once.

JetStream is JSON and headers over core NATS, so everything here (the stream check,
conditional idempotent appends, direct gets, ordered reads, the checkpoint bucket) is
written against ``Connection`` and works the same over either client. Server answers are
untrusted input: what is not the JSON expected becomes a ``ServerError``, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from events.stream import StreamSpec
from events.subjects import parse_subject
from registry.errors import (
    InvalidInput,
    PermissionDenied,
    ServerError,
    StreamMisconfigured,
    StreamOutdated,
    Unreachable,
    WriteNotConfirmed,
)
from registry.jetstream.checkpoints import ANONYMOUS, CheckpointStore
from registry.jetstream.connection import (
    Connection,
    ConnectionLost,
    NoResponders,
    PayloadTooLarge,
    Reply,
)
from registry.jetstream.direct import last_many, stored_from_direct
from registry.jetstream.protocol import (
    BATCH_COMMIT,
    BATCH_ID,
    BATCH_INCOMPLETE_TEXT,
    BATCH_SEQUENCE,
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    MESSAGE_TOO_LARGE,
    OWN_WRITE_IN_FLIGHT,
    STREAM_NOT_FOUND,
    WRONG_LAST_SEQUENCE,
    ApiError,
    api_error,
    outdated,
    stream_problems,
)
from registry.jetstream.tail import Tail
from registry.log.stored import MSG_ID, StoredMessage

if TYPE_CHECKING:
    from registry.jetstream.liveness import JetStreamLiveness
from registry.log.port import MAX_BATCH, ConditionalMessage, WrongLastSequence
from registry.log.reader import FROM_THE_START, Start

__all__ = ["JetStreamLog"]

T = TypeVar("T")

_VIOLATION = re.compile(r"permissions violation for (publish|subscription) to \"([^\"]*)", re.I)


class JetStreamLog:
    """One connection to the server, and the stream that holds the service log."""

    def __init__(
        self, conn: Connection, spec: StreamSpec, timeout: float, *, provisioning: bool = False
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.timeout = timeout
        # Off only for ``skyctl init``, which is about to scale the stream to the ask.
        self.provisioning = provisioning
        # Set at open: who the server says we are, and whether permissions limit us.
        self.user: str | None = None
        self.user_id: str | None = None  # the user as the server knows it (a JWT user's key)
        self.restricted = False
        self._denial_waiters: set[tuple[tuple[str, ...], asyncio.Future[str]]] = set()
        self._inbox_refused: str | None = None  # why no reply can ever arrive, if so
        # Whether open() had to create the stream, and the stream's replicas (what the
        # registry's other streams, the checkpoint bucket, are created with).
        self.created_stream = False
        self.stream_replicas = spec.replicas
        self._checkpoints: CheckpointStore | None = None
        self._liveness: JetStreamLiveness | None = None
        conn.on_error(self._on_error)

    @classmethod
    async def open(
        cls,
        conn: Connection,
        *,
        spec: StreamSpec | None = None,
        api_timeout: float = 5.0,
        provisioning: bool = False,
    ) -> JetStreamLog:
        """Ask the server who we are, then find (or create) the stream and check it."""
        self = cls(conn, spec or StreamSpec(), api_timeout, provisioning=provisioning)
        try:
            await self._who_am_i()
            await self._ensure_stream()
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def url(self) -> str:
        return self.conn.url

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self) -> JetStreamLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the JetStream API ---------------------------------------------------------------

    async def api(
        self, subject: str, body: Mapping[str, Any] | None, operation: str
    ) -> dict[str, Any]:
        """One JetStream API request: its JSON answer, or the registry's error for it."""
        payload = json.dumps(body).encode() if body is not None else b""
        try:
            reply = await self.guarded(
                self.conn.request(subject, payload, timeout=self.timeout), operation, subject
            )
        except NoResponders:
            raise Unreachable(self.url, "JetStream did not answer (is it enabled?)") from None
        except TimeoutError:
            raise ServerError(f"{operation} timed out at {self.url}") from None
        except ConnectionLost as exc:
            raise ServerError(f"{operation}: {exc}") from None
        answer = _json(reply, operation)
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ServerError(f"{operation}: the server's answer is malformed")
            if error.get("code") == 503:
                raise Unreachable(self.url, "the server does not have JetStream enabled")
            raise api_error(error, operation)
        return answer

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
            **spec.required,
        }

    async def ensure_stream(
        self, name: str, config: Mapping[str, Any], operation: str
    ) -> tuple[dict[str, Any], bool]:
        """The stream's configuration, creating the stream with ``config`` if it is missing
        (``operation`` names the creation in an error); and whether it was created."""
        created = False
        try:
            info = await self.api(f"$JS.API.STREAM.INFO.{name}", None, f"read stream {name}")
        except ApiError as exc:
            if exc.err_code != STREAM_NOT_FOUND:
                raise
            info = await self.api(f"$JS.API.STREAM.CREATE.{name}", config, operation)
            created = True
        have = info.get("config")
        if not isinstance(have, dict):
            raise ServerError(f"read stream {name}: the server's answer has no configuration")
        return have, created

    async def _ensure_stream(self) -> None:
        name = self.spec.name
        config, self.created_stream = await self.ensure_stream(
            name,
            self.stream_config(),
            f"create the registry's stream {name} (an admin must run skyctl once first)",
        )
        self.check_stream(config)
        self.stream_replicas = _int(config.get("num_replicas"), 1)

    def check_stream(self, config: Mapping[str, Any]) -> None:
        """Refuse a stream whose settings could drop or rewrite events (invariant 6)."""
        problems = stream_problems(self.spec, config, provisioning=self.provisioning)
        if problems:
            raise StreamMisconfigured(self.spec.name, problems)
        lacking = [] if self.provisioning else outdated(self.spec, config)
        if lacking:
            raise StreamOutdated(self.spec.name, lacking)

    async def stream_info(self, stream: str | None = None) -> dict[str, Any]:
        name = stream or self.spec.name
        return await self.api(f"$JS.API.STREAM.INFO.{name}", None, f"read stream {name}")

    async def last_sequence(self) -> int:
        state = (await self.stream_info()).get("state")
        return _int(state.get("last_seq") if isinstance(state, dict) else None, 0)

    # -- who we are --------------------------------------------------------------------

    async def _who_am_i(self) -> None:
        """Ask the server who this connection is and whether permissions limit it."""
        try:
            reply = await self.conn.request("$SYS.REQ.USER.INFO", timeout=1.0)
            data = json.loads(reply.data)["data"]
            if not isinstance(data, dict):
                raise TypeError
        except (TimeoutError, NoResponders, ValueError, KeyError, TypeError):
            # Not allowed to ask: assume limits, so refusals are reported as they happen.
            self.restricted = True
            return
        except ConnectionLost as exc:
            raise Unreachable(self.url, str(exc)) from None
        if not self.conn.auth_required:
            # The server took whatever name the client offered (`--user bob` on a server
            # without users): it proves nothing, so it names no one.
            return
        user = str(data.get("user") or "") or None
        name = data.get("user_name")  # JWT users: a name for humans beside the public key
        self.user = f"{name} ({user})" if name and user and name != user else user
        self.user_id = user
        self.restricted = bool(data.get("permissions"))

    async def authenticated_user(self) -> str | None:
        return self.user

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
        stream: str | None = None,
    ) -> int:
        """Append if the subject's last sequence is still the expected one (``Log.append``).

        ``stream`` names the stream the subject belongs to when it is not the log's own
        (the checkpoint bucket), for recognising our own earlier write.
        """
        headers = {
            **(headers or {}),
            MSG_ID: msg_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected_last_subject_seq),
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        operation = _write_operation(subject)
        while True:
            try:
                reply = await self.guarded(
                    self.conn.request(
                        subject, data, headers=headers, timeout=min(self.timeout, 2.0)
                    ),
                    operation,
                    subject,
                )
            except PayloadTooLarge as exc:
                raise InvalidInput(
                    "event", f"{exc.size} bytes", f"the server accepts at most {exc.limit} bytes"
                ) from None
            except NoResponders:
                reason = "no stream answered"  # a leader election, or the server restarting
            except TimeoutError:
                reason = "no answer"
            except ConnectionLost:
                raise WriteNotConfirmed(msg_id, "connection closed") from None
            else:
                ack = _json(reply, f"append to {subject}")
                error = ack.get("error")
                if error is None:
                    return _int(ack.get("seq"), 0) or _bad_ack(subject)
                if not isinstance(error, dict):
                    raise ServerError(f"append to {subject}: the server's answer is malformed")
                err_code = error.get("err_code")
                if err_code in WRONG_LAST_SEQUENCE:
                    # On R1 a retry of a write that was stored but whose ack was lost
                    # is rejected by the expectation, not deduplicated: is it ours?
                    last = await self.last(subject, stream=stream)
                    if last is not None and last.msg_id == msg_id:
                        return last.seq
                    raise WrongLastSequence(subject)
                if err_code == MESSAGE_TOO_LARGE:
                    raise InvalidInput(
                        "event", f"{len(data)} bytes", "larger than the stream accepts"
                    )
                if err_code != OWN_WRITE_IN_FLIGHT:
                    raise api_error(error, f"append to {subject}")
                reason = "the first attempt still in flight"
            if loop.time() >= deadline:
                raise WriteNotConfirmed(msg_id, f"{reason} for {retry_for:.0f} s")
            await asyncio.sleep(0.2)

    async def append_batch(
        self, messages: Sequence[ConditionalMessage], *, retry_for: float = 10.0
    ) -> list[int]:
        """All of ``messages`` or none, as one JetStream atomic batch (``Log.append_batch``).

        Every message but the last is published without waiting; the last commits, and
        its reply says whether the server stored all of them. A batch the server never
        sees committed (this process died, or the connection dropped) is abandoned by the
        server after 10 s and stores nothing.
        """
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        operation = _write_operation(subjects[0])
        while True:
            try:
                reply = await self.guarded(
                    self._send_batch(messages), operation, *dict.fromkeys(subjects)
                )
            except PayloadTooLarge as exc:
                raise InvalidInput(
                    "event", f"{exc.size} bytes", f"the server accepts at most {exc.limit} bytes"
                ) from None
            except NoResponders:
                reason = "no stream answered"
            except TimeoutError:
                reason = "no answer"
            except ConnectionLost:
                raise WriteNotConfirmed(messages[0].msg_id, "connection closed") from None
            else:
                ack = _json(reply, f"append to {subjects[0]}")
                error = ack.get("error")
                if error is None:
                    last = _int(ack.get("seq"), 0) or _bad_ack(subjects[0])
                    return list(range(last - len(messages) + 1, last + 1))
                if not isinstance(error, dict):
                    raise ServerError(f"append to {subjects[0]}: the server's answer is malformed")
                if error.get("err_code") in WRONG_LAST_SEQUENCE:
                    # Either someone wrote first, or an earlier attempt of ours was stored
                    # and its ack lost: then every message is there under our ids.
                    stored = await self.last_many(subjects)
                    mine = [stored.get(m.subject) for m in messages]
                    if all(
                        s is not None and s.msg_id == m.msg_id
                        for s, m in zip(mine, messages, strict=True)
                    ):
                        return [s.seq for s in mine if s is not None]
                    raise WrongLastSequence(subjects[0])
                raise api_error(error, f"append to {subjects[0]}")
            if loop.time() >= deadline:
                raise WriteNotConfirmed(messages[0].msg_id, f"{reason} for {retry_for:.0f} s")
            await asyncio.sleep(0.2)

    async def _send_batch(self, messages: Sequence[ConditionalMessage]) -> Reply:
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
                await self.conn.publish(message.subject, message.data, headers=headers)
            else:
                headers[BATCH_COMMIT] = "1"
                reply = await self.conn.request(
                    message.subject, message.data, headers=headers, timeout=min(self.timeout, 5.0)
                )
                if self.restricted and BATCH_INCOMPLETE_TEXT in reply.data[:200]:
                    # A message the server refused us (a namespace this user may not write)
                    # gets no reply, only an error on the connection, while the commit that
                    # follows it says the batch is incomplete. The server sent that error
                    # first: a round trip makes sure it has been read (and a moment lets
                    # the client's error callback run), so ``guarded`` reports the refusal
                    # rather than the incomplete batch.
                    await self.conn.flush(self.timeout)
                    await asyncio.sleep(0.05)
                return reply
        raise AssertionError("unreachable: a batch has a last message")

    # -- reading ---------------------------------------------------------------------

    async def last(
        self, subject: str, *, retry_for: float = 10.0, stream: str | None = None
    ) -> StoredMessage | None:
        """The subject's last message, or None if it has none (a direct get).

        Retried (it is only a read) while the server is briefly away: a restart, or a
        leader election in a cluster.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                reply = await self.guarded(
                    self.conn.request(
                        f"$JS.API.DIRECT.GET.{stream or self.spec.name}.{subject}",
                        timeout=self.timeout,
                    ),
                    f"read {subject}",
                    "$JS.API.DIRECT.GET.",
                )
            except (TimeoutError, NoResponders):
                if loop.time() >= deadline:
                    raise ServerError(f"reading {subject} timed out at {self.url}") from None
                await asyncio.sleep(0.2)
                continue
            except ConnectionLost:
                raise ServerError(f"reading {subject}: connection to {self.url} closed") from None
            if reply.status == "404":
                return None
            if reply.status is not None:
                raise ServerError(f"read {subject} failed: {reply.status} {reply.description}")
            return stored_from_direct(reply.headers, reply.data)

    async def last_many(self, subjects: Sequence[str]) -> dict[str, StoredMessage]:
        try:
            return await self.guarded(
                last_many(self.conn, self.spec.name, subjects, self.timeout),
                "read services",
                "$JS.API.DIRECT.GET.",
            )
        except ConnectionLost as exc:
            raise ServerError(f"reading services: {exc}") from None

    def read(
        self, filters: Sequence[str], start: Start = FROM_THE_START, *, heartbeat: float = 1.0
    ) -> Tail:
        return Tail(self, filters, start, heartbeat=heartbeat)

    async def checkpoints(self) -> CheckpointStore:
        if self._checkpoints is None:
            self._checkpoints = await CheckpointStore.open(self, self.user_id or ANONYMOUS)
        return self._checkpoints

    async def liveness(self) -> JetStreamLiveness:
        if self._liveness is None:
            from registry.jetstream.liveness import JetStreamLiveness

            self._liveness = await JetStreamLiveness.open(self)
        return self._liveness

    # -- refusals ------------------------------------------------------------------------

    async def guarded(self, awaitable: Awaitable[T], operation: str, *subjects: str) -> T:
        """Await ``awaitable``, failing at once with PermissionDenied if the server refuses
        this user a publish or subscribe on one of ``subjects`` (prefixes) meanwhile.

        A refused publish gets no reply, only an asynchronous error, so without this a
        refusal would surface as a timeout seconds later.
        """
        if self._inbox_refused is not None:
            _close_unawaited(awaitable)
            raise PermissionDenied(operation, self._inbox_refused)
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
                raise PermissionDenied(
                    operation,
                    self._inbox_refused or _describe_violation(waiter.result(), self.user),
                )
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
                "inbox prefix it allows (--inbox-prefix or NATS_INBOX_PREFIX, e.g. _INBOX_<user>)"
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


def _close_unawaited(awaitable: Awaitable[Any]) -> None:
    """A coroutine that will not run is closed, so Python does not warn about it."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _json(reply: Reply, operation: str) -> dict[str, Any]:
    try:
        answer = json.loads(reply.data)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        status = f" (status {reply.status})" if reply.status else ""
        raise ServerError(f"{operation}: the server's answer is not a JSON object{status}")
    return answer


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bad_ack(subject: str) -> int:
    raise ServerError(f"append to {subject}: the server's acknowledgement has no sequence")


def _describe_violation(text: str, user: str | None) -> str:
    match = _VIOLATION.search(text)
    who = f"user {user!r}" if user else "this user"
    if match is None:
        return f"the server refused {who}: {text}"
    verb = "publish" if match.group(1).lower() == "publish" else "subscribe"
    return f"the server does not let {who} {verb} to {match.group(2)}"


def _write_operation(subject: str) -> str:
    try:
        namespace, _ = parse_subject(subject)
    except ValueError:
        return f"write {subject}"
    return f'create or delete services in namespace "{namespace}"'
