"""Core NATS, as the JetStream layer above it needs it: the ``Connection`` protocol.

Everything the registry does with JetStream (conditional appends, direct gets, consumers,
the checkpoint bucket, the stream check) is JSON and headers over four core operations:
publish, request, subscribe and inbox names. ``registry.jetstream.log`` implements
JetStream once, over this protocol; two clients implement the protocol:

- ``natspy.NatsPyConnection``: nats-py. Reconnects, NKey/JWT credentials, every TLS
  option. What long-lived programs use.
- ``wire.WireConnection``: a small client of our own that speaks the text protocol. It
  imports in a few milliseconds where nats-py takes a hundred, which is most of a one-shot
  ``skyctl`` command's life; it does several servers, TLS, user/password and tokens, and
  never reconnects.

``registry.jetstream.connect`` picks one, once, at connect (the rule is written there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Connection",
    "ConnectionLost",
    "Handler",
    "NoResponders",
    "PayloadTooLarge",
    "Reply",
    "Subscription",
    "mask_url",
]

# A message delivered to a subscription: subject, reply subject ("" if none), headers
# (None if none; a status reply carries "Status" and "Description"), payload. Called in
# the order the server sent them, from the connection's reading task: it must not block.
Handler = Callable[[str, str, Mapping[str, str] | None, bytes], None]


class NoResponders(Exception):
    """Nobody listens on the subject of a request (the server's 503 status)."""


class ConnectionLost(Exception):
    """The connection is closed for good (a one-shot client, or reconnects exhausted)."""


class PayloadTooLarge(ValueError):
    """The message is larger than the server accepts (its ``max_payload``): not sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes exceeds the server's max_payload {limit}")
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Reply:
    """The first message answering a request."""

    subject: str
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes = b""

    @property
    def status(self) -> str | None:
        return self.headers.get("Status")

    @property
    def description(self) -> str:
        return self.headers.get("Description", "")


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Connection(Protocol):
    """One client connection to a NATS server (or to one of a cluster's servers)."""

    @property
    def url(self) -> str:
        """The server URL(s) as given, with any password masked: for messages."""
        ...

    @property
    def is_closed(self) -> bool:
        """Closed for good: nothing more will be sent or received."""
        ...

    @property
    def is_connected(self) -> bool:
        """Up now: a reconnecting client is not, between losing a server and finding one
        (how a long-lived reader says how stale it is)."""
        ...

    @property
    def reconnects(self) -> bool:
        """Whether a dropped connection comes back by itself (readers then re-subscribe)."""
        ...

    @property
    def auth_required(self) -> bool:
        """Whether the server authenticates its clients (its INFO says so). A server that
        does not takes whatever user name a client offers, so that name proves nothing."""
        ...

    def new_inbox(self) -> str: ...

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None: ...

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> Reply:
        """The first reply. Raises ``NoResponders``, ``TimeoutError`` or ``ConnectionLost``."""
        ...

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        """Deliver every message on ``subject`` to ``handler``; no client-side limit or drop."""
        ...

    async def flush(self, timeout: float) -> None:
        """A round trip: everything sent before it has reached the server."""
        ...

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each reconnect; returns a function that unregisters it."""
        ...

    def on_error(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the text of each asynchronous error the server sends
        (a permissions violation, above all: a refused publish gets no other answer)."""
        ...

    async def close(self) -> None: ...


def mask_url(url: str) -> str:
    """``nats://alice:secret@host`` -> ``nats://alice:***@host``, for every URL of a list."""
    parts = []
    for one in url.split(","):
        scheme, sep, rest = one.partition("://")
        if not sep:
            scheme, rest = "", one
        userinfo, at, host = rest.rpartition("@")
        if at:
            user, colon, _ = userinfo.partition(":")
            userinfo = f"{user}:***" if colon else "***"
            rest = f"{userinfo}@{host}"
        parts.append(f"{scheme}{sep}{rest}")
    return ",".join(parts)
