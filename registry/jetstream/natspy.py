"""The ``Connection`` protocol over nats-py: for programs that run for a while.

nats-py reconnects when a server goes away (and moves to another server of a cluster),
and does NKey/JWT credentials; the price is about a hundred milliseconds of imports. Only
core NATS is used here: JetStream is ``registry.jetstream.log``'s, written once for both
clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from registry.errors import NotAuthenticated, Unreachable
from registry.jetstream.connection import (
    ConnectionLost,
    Handler,
    NoResponders,
    PayloadTooLarge,
    Reply,
    mask_url,
)

__all__ = ["NatsPyConnection"]

_CONNECT_DEADLINE = 4.0  # seconds; "unreachable" must be said within 5

log = logging.getLogger(__name__)


class _Subscription:
    def __init__(self, sub: NatsSubscription) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        # When the connection is gone, so is the subscription.
        with contextlib.suppress(nats.errors.Error, OSError):
            await self._sub.unsubscribe()


class NatsPyConnection:
    """A nats-py client behind the ``Connection`` protocol."""

    def __init__(self, nc: NatsClient, url: str, reconnects: bool) -> None:
        self.nc = nc
        self._url = mask_url(url)
        self._reconnects = reconnects
        self._reconnect_listeners: list[Callable[[], None]] = []
        self._error_listeners: list[Callable[[str], None]] = []

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        options: Mapping[str, Any],
        keep_reconnecting: bool,
        timeout: float = 2.0,
    ) -> NatsPyConnection:
        """Connect, failing within seconds when nobody answers.

        ``options`` are nats-py's (credentials, TLS). With ``keep_reconnecting`` the first
        connect still fails fast, but a connection that was up retries until the server is
        back; without it, a dropped connection is closed for good.
        """
        errors: list[BaseException] = []
        holder: list[NatsPyConnection] = []
        fatal: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            errors.append(exc)
            log.debug("nats error: %r", exc)
            if isinstance(exc, ssl.SSLError) and not fatal.done():
                fatal.set_result(None)
            for instance in holder:
                for listener in list(instance._error_listeners):
                    listener(str(exc))

        async def on_reconnect() -> None:
            if must_be_tls and not _encrypted(nc):
                # A tls:// URL never carries plaintext, whichever server took us back.
                await nc.close()
                return
            for instance in holder:
                for listener in list(instance._reconnect_listeners):
                    listener()

        # nats-py's defaults retry for two minutes before failing a first connect
        # (nats.py#352); one retry 0.1 s later fails in well under 5 s. (Its annotations
        # say int for these; it takes floats.)
        settings: dict[str, Any] = {
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
            "connect_timeout": timeout,
            "dont_randomize": True,  # the servers in the order given, as the wire client
            "error_cb": on_error,
            "reconnected_cb": on_reconnect,
        }
        servers = [part.strip() for part in url.split(",") if part.strip()] or [url]
        must_be_tls = "tls" in options or any(s.lower().startswith("tls://") for s in servers)
        nc = NatsClient()
        shown = mask_url(url)
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
            if any("authorization" in str(e).lower() for e in errors):
                raise NotAuthenticated(shown, "authorization violation") from None
            raise Unreachable(shown, _reason(errors, exc)) from None
        except ValueError as exc:  # a URL nats-py cannot parse
            raise Unreachable(shown, f"bad URL: {mask_url(str(exc))}") from None
        if must_be_tls and not _encrypted(nc):
            # nats-py falls back to plaintext when a tls:// server does not ask for TLS.
            await nc.close()
            raise Unreachable(shown, "the server does not offer TLS; refusing plaintext")
        if keep_reconnecting:
            # nats-py reads these on every reconnect attempt, so from now on a dropped
            # connection is retried until the server is back.
            nc.options["max_reconnect_attempts"] = -1
            nc.options["reconnect_time_wait"] = 0.25
        self = cls(nc, url, keep_reconnecting)
        holder.append(self)
        return self

    # -- the protocol --------------------------------------------------------------------

    @contextlib.contextmanager
    def _mapped(self, subject: str, payload: bytes = b"") -> Iterator[None]:
        """nats-py's errors as the ``Connection`` protocol's: the one place they are
        translated, for every operation of this client."""
        try:
            yield
        except nats.errors.MaxPayloadError:
            raise PayloadTooLarge(len(payload), self.nc.max_payload) from None
        except nats.errors.NoRespondersError:
            raise NoResponders(subject) from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"no reply from {subject}") from None
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            raise ConnectionLost(f"connection to {self._url} closed") from None

    @property
    def url(self) -> str:
        return self._url

    @property
    def is_closed(self) -> bool:
        return bool(self.nc.is_closed)

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def reconnects(self) -> bool:
        return self._reconnects

    @property
    def auth_required(self) -> bool:
        # nats-py keeps the server's INFO only in a private attribute.
        return self.nc._server_info.get("auth_required") is True

    def new_inbox(self) -> str:
        return self.nc.new_inbox()

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        with self._mapped(subject, payload):
            await self.nc.publish(subject, payload, reply=reply, headers=dict(headers or {}))

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> Reply:
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        with self._mapped(subject, payload):
            msg = await self.nc.request(
                subject, payload, timeout=timeout, headers=dict(headers) if headers else None
            )
        if task is not None and task.cancelling() > cancelling:
            # nats-py waits with asyncio.wait_for, which in Python 3.11 returns a reply that
            # lands at the moment its task is cancelled and swallows the cancellation (a
            # checkpoint save in a subscriber's loop, say): the task would go on, marked as
            # cancelling, into a wait that never ends. Deliver the cancellation here.
            raise asyncio.CancelledError
        return Reply(msg.subject, msg.headers or {}, msg.data)

    async def subscribe(self, subject: str, handler: Handler) -> _Subscription:
        async def deliver(msg: Msg) -> None:
            handler(msg.subject, msg.reply, msg.headers, msg.data)

        with self._mapped(subject):
            # Unlimited client-side queues: nats-py must never drop a message (its
            # slow-consumer drops are silent); readers apply back-pressure themselves.
            sub = await self.nc.subscribe(
                subject, cb=deliver, pending_msgs_limit=0, pending_bytes_limit=0
            )
        return _Subscription(sub)

    async def flush(self, timeout: float) -> None:
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        with self._mapped(self._url):
            await self.nc.flush(timeout=timeout)  # type: ignore[arg-type]  # takes floats
        if task is not None and task.cancelling() > cancelling:
            raise asyncio.CancelledError  # (nats-py's wait_for swallowed it: see request)

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._reconnect_listeners.append(listener)
        return lambda: self._reconnect_listeners.remove(listener)

    def on_error(self, listener: Callable[[str], None]) -> None:
        self._error_listeners.append(listener)

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (nats.errors.Error, TimeoutError):
                await self.nc.close()


def _encrypted(nc: NatsClient) -> bool:
    """Whether the connection is TLS (nats-py keeps its socket in private attributes)."""
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    return writer is not None and writer.get_extra_info("ssl_object") is not None


def _reason(errors: list[BaseException], exc: BaseException) -> str:
    cause = next((e for e in reversed(errors) if str(e)), exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cause.verify_message}; give its CA with --tlsca)"
    text = str(cause) or type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    return mask_url(text)
