"""The log on a NATS server: connect, keep the stream trustworthy, append, read the last.

This package is the only place that imports ``nats``; everything above it speaks in
subjects, sequences and bytes, and nats-py's exceptions are translated into the
registry's own here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StorageType, StreamConfig

from events.stream import StreamSpec
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

__all__ = ["DEFAULT_URL", "JetStreamLog", "WrongLastSequence"]

DEFAULT_URL = "nats://127.0.0.1:4222"

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
# R1 streams answer a failed expectation with 10071, replicated ones with 10164.
_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
# A replicated stream's leader answers a retry whose first attempt it is still
# proposing with 10158 "duplicate message id is in process": not stored yet, but it may
# be, so the retry goes on until the id is stored (a duplicate ack) or the time is up.
_OWN_WRITE_IN_FLIGHT = 10158
_REPLICAS_NEED_CLUSTER = 10074

log = logging.getLogger(__name__)


class WrongLastSequence(Exception):
    """The subject moved on since it was read: someone else wrote first."""

    def __init__(self, subject: str) -> None:
        super().__init__(subject)
        self.subject = subject


class JetStreamLog:
    """A connection to the server and the one stream that holds the service log."""

    def __init__(self, nc: NatsClient, spec: StreamSpec, url: str, timeout: float) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=timeout)
        self.spec = spec
        self.url = url
        self.timeout = timeout
        self._reconnect_listeners: list[Callable[[], None]] = []
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

        async def on_error(exc: Exception) -> None:
            errors.append(exc)
            log.debug("nats error: %r", exc)

        async def on_reconnect() -> None:
            for instance in holder:
                instance._notify_reconnected()

        options: dict[str, Any] = dict(credentials.connect_options() if credentials else {})
        # "nats://a:4222,nats://b:4222" (as the nats tools take it): the servers of a
        # cluster; nats-py wants a list, and moves to the next one when one goes away.
        servers = [part.strip() for part in url.split(",") if part.strip()] or [url]
        try:
            nc = await nats.connect(
                servers,
                # nats-py's defaults retry for two minutes before failing a first
                # connect (nats.py#352); one retry 0.1 s later fails in well under 5 s.
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                connect_timeout=min(api_timeout, 2.0),
                error_cb=on_error,
                reconnected_cb=on_reconnect,
                **options,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
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
                info = await self.js.stream_info(name)
            except nats.js.errors.NotFoundError:
                info = await self.js.add_stream(self.stream_config())
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
        problems = []
        for key, want in self.spec.required.items():
            have = getattr(config, key)
            if key in ("max_msgs", "max_bytes", "max_msgs_per_subject") and have in (None, 0):
                have = -1  # the server reports "unlimited" as -1, some clients as 0
            if key == "max_age" and have is None:
                have = 0
            if key in ("deny_delete", "deny_purge", "allow_rollup_hdrs", "sealed"):
                have = bool(have)
            if have != want:
                problems.append(f"{key} is {have}, must be {want}")
        if not config.allow_direct:
            problems.append("allow_direct is off, reads need it")
        missing = set(self.spec.subjects) - set(config.subjects or [])
        if missing:
            problems.append(f"subjects {sorted(config.subjects or [])} lack {sorted(missing)}")
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
                ack = await self.js.publish(
                    subject, data, headers=headers, timeout=min(self.timeout, 2.0)
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
                if exc.err_code != _OWN_WRITE_IN_FLIGHT:  # a 409, not a BadRequestError
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
            if self._permission_error() is not None:
                raise PermissionDenied(f"write {subject}", self._permission_error() or "")
            if loop.time() >= deadline:
                raise WriteNotConfirmed(msg_id, f"{reason} for {retry_for:.0f} s")
            await asyncio.sleep(0.2)

    # -- reading ---------------------------------------------------------------------

    async def last(self, subject: str) -> StoredMessage | None:
        """The subject's last message, or None if the subject has none (direct get).

        A request that timed out is asked again, once: on a cluster, the replica that
        took it (any replica answers a direct get) or the node the client was on may
        have died with it, and another will answer.
        """
        for attempt in (1, 2):
            try:
                raw = await self.js.get_last_msg(self.spec.name, subject, direct=True)
            except nats.js.errors.NotFoundError:
                return None
            except nats.js.errors.APIError as exc:
                raise _translate_api_error(exc, f"read {subject}") from None
            except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
                if attempt == 1 and not self.nc.is_closed:
                    continue
                raise ServerError(f"reading {subject} timed out at {self.url}") from None
            return _stored(raw)
        raise AssertionError("unreachable")

    async def authenticated_user(self) -> str | None:
        """The user the server authenticated this connection as; None when it does not
        authenticate (or will not say)."""
        try:
            reply = await self.nc.request("$SYS.REQ.USER.INFO", b"", timeout=1.0)
            user = json.loads(reply.data)["data"]["user"]
        except (TimeoutError, nats.errors.Error, ValueError, KeyError, TypeError):
            return None
        return str(user) if user else None

    async def _api(self, awaitable: Any, what: str) -> Any:
        try:
            return await awaitable
        except nats.js.errors.APIError as exc:
            raise _translate_api_error(exc, what) from None
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            raise ServerError(f"{what} timed out at {self.url}") from None

    def _permission_error(self) -> str | None:
        err = self.nc.last_error
        if err is not None and "permissions violation" in str(err).lower():
            return str(err).strip("'\" ")
        return None


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
    text = str(cause) or type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    return text


def _translate_api_error(exc: nats.js.errors.APIError, operation: str) -> ServerError:
    description = exc.description or str(exc)
    if exc.code == 403 or "permission" in description.lower():
        return PermissionDenied(operation, description)
    if exc.err_code == _REPLICAS_NEED_CLUSTER:
        description += ": more than 1 replica needs a JetStream cluster"
    return ServerError(f"{operation} failed: {description} (code {exc.err_code})")
