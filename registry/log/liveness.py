"""What the registry needs from the liveness stream: the ``Liveness`` protocol.

The announcer, the endpoints, the Resolver and ``get tasks`` are written against this and
nothing else; ``registry.jetstream.liveness`` implements it over JetStream. Liveness is
the server's decision (per-message TTLs, subject delete markers): nothing here expires
anything, and there is no sweeper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from registry.log.reader import Reader

__all__ = ["ExpiringMessage", "Liveness"]


@dataclass(frozen=True, slots=True)
class ExpiringMessage:
    """One message for the liveness stream: it replaces its subject's last message and
    expires ``ttl`` seconds after it is stored."""

    subject: str
    data: bytes
    ttl: int


class Liveness(Protocol):
    @property
    def url(self) -> str: ...

    async def publish(self, messages: Sequence[ExpiringMessage], *, timeout: float = 2.0) -> None:
        """Store every message, and return once the server has stored the last one (sent
        after the others on the same connection, so it vouches for them).

        Raises ``ServerError`` (``PermissionDenied`` among them) when it is not confirmed,
        ``InvalidInput`` when a message is larger than the server takes.
        """
        ...

    def read(self, filters: Sequence[str]) -> Reader:
        """The last message of each subject matching ``filters``, ``CAUGHT_UP``, then every
        new one as it is stored; after anything that may have lost one (a reconnect, a
        gap, silence), ``RESTARTED`` and the current state again."""
        ...

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each reconnect (an announcer renews at once: the server
        may have restarted and its heartbeats expired meanwhile)."""
        ...

    async def serve(
        self, subject: str, answer: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[], Awaitable[None]]:
        """Answer each request sent to ``subject`` (a live task's control subject) with
        what ``answer`` returns for its body; a function that stops answering.

        Raises ``PermissionDenied`` if this user may not receive on ``subject``.
        """
        ...

    async def ask(self, subject: str, data: bytes, *, timeout: float) -> bytes | None:
        """Send a request to ``subject``; the answer's body, or None if nobody answers
        (nobody listens there, or no answer within ``timeout``).

        Raises ``PermissionDenied`` if this user may not publish on ``subject``.
        """
        ...
