"""The log on a NATS server: connect, keep the stream trustworthy, append, read the last.

This package is the only place that imports ``nats``; everything above it speaks in
subjects, sequences and bytes, and nats-py's exceptions are translated into the
registry's own here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StorageType, StreamConfig

from events.stream import StreamSpec
from events.subjects import parse_subject
from registry.credentials import Credentials
from registry.entry import MSG_ID, StoredMessage
from registry.errors import (
    NotAuthenticated,
    PermissionDenied,
    ServerError,
    StreamMisconfigured,
    Unreachable,
    WriteNotConfirmed,
)
from registry.jetstream.protocol import (
    DEFAULT_URL,
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    OWN_WRITE_IN_FLIGHT,
    WrongLastSequence,
    api_error,
    stream_problems,
)
from registry.jetstream.protocol import WRONG_LAST_SEQUENCE as _WRONG_LAST_SEQUENCE

__all__ = ["DEFAULT_URL", "JetStreamLog", "WrongLastSequence"]

_CONNECT_DEADLINE = 4.0  # seconds; "unreachable" must be said within 5

log = logging.getLogger(__name__)
T = TypeVar("T")


class JetStreamLog:
    """A connection to the server and the one stream that holds the service log."""

    def __init__(self, nc: NatsClient, spec: StreamSpec, url: str, timeout: float) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=timeout)
        self.spec = spec
        self.url = url
        self.timeout = timeout
        self._reconnect_listeners: list[Callable[[], None]] = []
        # Set at connect: who the server says we are, and whether permissions limit us.
        self.user: str | None = None
        self.restricted = False
        self._denial_waiters: set[tuple[tuple[str, ...], asyncio.Future[str]]] = set()
        # Set by open(): whether it had to create the stream, and the stream's replicas
        # (what the registry's other streams, the subscriptions bucket, are created with).
        self.created_stream = False
        self.stream_replicas = spec.replicas

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        spec: StreamSpec | None = None,
        credentials: Credentials | None = None,
        api_timeout: float = 5.0,
        keep_reconnecting: bool = False,
    ) -> JetStreamLog:
        """Connect (failing within seconds when nobody answers) and check the stream.

        ``keep_reconnecting`` is for long-lived readers such as watchers: the first
        connect still fails fast, but a connection that was up retries forever.
        """
        errors: list[BaseException] = []
        holder: list[JetStreamLog] = []

        fatal: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            errors.append(exc)
            log.debug("nats error: %r", exc)
            if isinstance(exc, ssl.SSLError) and not fatal.done():
                fatal.set_result(None)
            if _VIOLATION.search(str(exc)):
                for instance in holder:
                    instance._denied(str(exc))

        async def on_reconnect() -> None:
            for instance in holder:
                instance._notify_reconnected()

        options: dict[str, Any] = dict(credentials.connect_options() if credentials else {})
        # nats-py's defaults retry for two minutes before failing a first connect
        # (nats.py#352); one retry 0.1 s later fails in well under 5 s. (Its annotations
        # say int for these; it takes floats.)
        settings: dict[str, Any] = {
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
            "connect_timeout": min(api_timeout, 2.0),
            "error_cb": on_error,
            "reconnected_cb": on_reconnect,
        }
        # "nats://a:4222,nats://b:4222" (as the nats tools take it): the servers of a
        # cluster; nats-py wants a list, and moves to the next one when one goes away.
        servers = [part.strip() for part in url.split(",") if part.strip()] or [url]
        nc = NatsClient()
        try:
            connecting = asyncio.ensure_future(nc.connect(servers, **settings, **options))
            # nats-py hangs after a failed TLS certificate check: stop at the first one,
            # and in any case within the deadline.
            done, _ = await asyncio.wait(
                {connecting, fatal}, timeout=_CONNECT_DEADLINE, return_when=asyncio.FIRST_COMPLETED
            )
            if connecting not in done:
                connecting.cancel()
                raise TimeoutError("no answer")
            connecting.result()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await nc.close()
            refusal = next((e for e in errors if "authorization" in str(e).lower()), None)
            if refusal is not None:
                raise NotAuthenticated(url, "authorization violation") from None
            raise Unreachable(url, _reason(errors, exc)) from None
        except ValueError as exc:  # a URL nats-py cannot parse
            raise Unreachable(url, f"bad URL: {exc}") from None
        if keep_reconnecting:
            # nats-py reads these on every reconnect attempt, so from now on a dropped
            # connection is retried until the server is back.
            nc.options["max_reconnect_attempts"] = -1
            nc.options["reconnect_time_wait"] = 0.25
        self = cls(nc, spec or StreamSpec(), url, api_timeout)
        holder.append(self)
        try:
            if credentials is not None and credentials.connect_options():
                await self._who_am_i()
            await self._ensure_stream()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (nats.errors.Error, TimeoutError):
                await self.nc.close()

    async def __aenter__(self) -> JetStreamLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each reconnect; returns a function that unregisters it."""
        self._reconnect_listeners.append(listener)
        return lambda: self._reconnect_listeners.remove(listener)

    def _notify_reconnected(self) -> None:
        for listener in list(self._reconnect_listeners):
            listener()

    # -- the stream ------------------------------------------------------------------

    def stream_config(self) -> StreamConfig:
        spec = self.spec
        return StreamConfig(
            name=spec.name,
            description="SkyFlow service registry: the event log (never trimmed)",
            subjects=list(spec.subjects),
            storage=StorageType.FILE,
            num_replicas=spec.replicas,
            duplicate_window=spec.duplicate_window_s,
            allow_direct=True,
            **spec.required,
        )

    async def _ensure_stream(self) -> None:
        name = self.spec.name
        try:
            try:
                info = await self.guarded(
                    self.js.stream_info(name), f"read stream {name}", "$JS.API.STREAM.INFO."
                )
            except nats.js.errors.NotFoundError:
                info = await self.guarded(
                    self.js.add_stream(self.stream_config()),
                    f"create the registry's stream {name} (an admin must run skyctl once first)",
                    "$JS.API.STREAM.CREATE.",
                )
                self.created_stream = True
        except nats.js.errors.ServiceUnavailableError:
            raise Unreachable(self.url, "the server does not have JetStream enabled") from None
        except nats.js.errors.APIError as exc:
            raise _translate_api_error(exc, f"create stream {name}") from None
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            raise Unreachable(self.url, "JetStream did not answer") from None
        self.check_stream(info.config)
        self.stream_replicas = int(info.config.num_replicas or 1)

    def check_stream(self, config: StreamConfig) -> None:
        """Refuse a stream whose settings could drop or rewrite events (invariant 6)."""
        problems = stream_problems(self.spec, vars(config))
        if problems:
            raise StreamMisconfigured(self.spec.name, problems)

    async def last_sequence(self) -> int:
        info = await self._api(self.js.stream_info(self.spec.name), "read stream info")
        return int(info.state.last_seq)

    # -- writing ---------------------------------------------------------------------

    async def append(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str,
        expected_last_subject_seq: int,
        retry_for: float = 10.0,
    ) -> int:
        """Append one message if the subject's last sequence is still the expected one.

        Idempotent: a retry (after a timeout or a lost ack) carries the same
        ``Nats-Msg-Id``, and a rejection of our own earlier write is recognised as
        success. Raises ``WrongLastSequence`` when someone else wrote first.
        """
        headers = {
            MSG_ID: msg_id,
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected_last_subject_seq),
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                ack = await self.guarded(
                    self.js.publish(subject, data, headers=headers, timeout=min(self.timeout, 2.0)),
                    _write_operation(subject),
                    subject,
                )
                return int(ack.seq)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code not in _WRONG_LAST_SEQUENCE:
                    raise _translate_api_error(exc, f"append to {subject}") from None
                # On R1 a retry of a write that was stored but whose ack was lost
                # is rejected by the expectation, not deduplicated: is it ours?
                last = await self.last(subject)
                if last is not None and last.msg_id == msg_id:
                    return last.seq
                raise WrongLastSequence(subject) from None
            except nats.js.errors.APIError as exc:
                if exc.err_code != OWN_WRITE_IN_FLIGHT:  # a 409, not a BadRequestError
                    raise _translate_api_error(exc, f"append to {subject}") from None
                reason = "the first attempt still in flight"
            except (
                TimeoutError,
                nats.errors.TimeoutError,
                nats.js.errors.NoStreamResponseError,
                nats.errors.NoRespondersError,
            ) as exc:
                reason = type(exc).__name__
            except nats.errors.ConnectionClosedError:
                raise WriteNotConfirmed(msg_id, "connection closed") from None
            if loop.time() >= deadline:
                raise WriteNotConfirmed(msg_id, f"{reason} for {retry_for:.0f} s")
            await asyncio.sleep(0.2)

    # -- reading ---------------------------------------------------------------------

    async def last(self, subject: str, *, retry_for: float = 10.0) -> StoredMessage | None:
        """The subject's last message, or None if the subject has none (direct get).

        Retried (it is only a read) while the server is briefly away: a restart, or a
        leader election in a cluster.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                raw = await self.guarded(
                    self.js.get_last_msg(self.spec.name, subject, direct=True),
                    f"read {subject}",
                    "$JS.API.DIRECT.GET.",
                )
                return _stored(raw)
            except nats.js.errors.NotFoundError:
                return None
            except nats.js.errors.APIError as exc:
                raise _translate_api_error(exc, f"read {subject}") from None
            except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
                if loop.time() >= deadline:
                    raise ServerError(f"reading {subject} timed out at {self.url}") from None
            except nats.errors.ConnectionClosedError:
                raise ServerError(f"reading {subject}: connection to {self.url} closed") from None
            await asyncio.sleep(0.2)

    async def _who_am_i(self) -> None:
        """Ask the server who this connection is and whether permissions limit it."""
        try:
            reply = await self.nc.request("$SYS.REQ.USER.INFO", b"", timeout=1.0)
            data = json.loads(reply.data)["data"]
        except (TimeoutError, nats.errors.Error, ValueError, KeyError, TypeError):
            # Not allowed to ask: assume limits, so refusals are reported as they happen.
            self.restricted = True
            return
        user = str(data.get("user") or "") or None
        name = data.get("user_name")  # JWT users: a name for humans beside the public key
        self.user = f"{name} ({user})" if name and user and name != user else user
        self.restricted = bool(data.get("permissions"))

    async def authenticated_user(self) -> str | None:
        """The user the server authenticated this connection as; None when it does not
        authenticate (or will not say)."""
        if self.user is None and not self.restricted:
            await self._who_am_i()
        return self.user

    async def guarded(self, awaitable: Awaitable[T], operation: str, *subjects: str) -> T:
        """Await ``awaitable``, failing at once with PermissionDenied if the server refuses
        this user a publish or subscribe on one of ``subjects`` (prefixes) meanwhile.

        A refused publish gets no reply, only an asynchronous error, so without this a
        refusal would surface as a timeout seconds later.
        """
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
                raise PermissionDenied(operation, _describe_violation(waiter.result(), self.user))
            return task.result()
        finally:
            self._denial_waiters.discard(entry)
            if not task.done():
                task.cancel()

    def _denied(self, text: str) -> None:
        # nats-py lower-cases the server's error text, subject included.
        match = _VIOLATION.search(text)
        subject = match.group(2) if match else ""
        for prefixes, waiter in list(self._denial_waiters):
            if waiter.done():
                continue
            exact = next((p for p in prefixes if p.lower() == subject), None)
            if (
                exact is not None
                or not prefixes
                or subject.startswith(tuple(p.lower() for p in prefixes))
            ):
                waiter.set_result(text.replace(subject, exact) if exact else text)

    async def _api(self, awaitable: Any, what: str) -> Any:
        try:
            return await awaitable
        except nats.js.errors.APIError as exc:
            raise _translate_api_error(exc, what) from None
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            raise ServerError(f"{what} timed out at {self.url}") from None


_VIOLATION = re.compile(r"permissions violation for (publish|subscription) to \"([^\"]*)", re.I)


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


def _stored(raw: RawStreamMsg) -> StoredMessage:
    return StoredMessage(
        seq=int(raw.seq or 0),
        subject=str(raw.subject),
        data=bytes(raw.data or b""),
        headers=dict(raw.headers or {}),
        time_ns=int(raw.time.timestamp() * 1_000_000) * 1000 if raw.time else 0,
    )


def _reason(errors: list[BaseException], exc: BaseException) -> str:
    cause = next((e for e in reversed(errors) if str(e)), exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cause.verify_message}; give its CA with --tlsca)"
    text = str(cause) or type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    return text


def _translate_api_error(exc: nats.js.errors.APIError, operation: str) -> ServerError:
    return api_error(exc.code, exc.err_code, exc.description or str(exc), operation)
