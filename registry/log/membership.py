"""What the registry needs from the membership stream: the ``MembershipLog`` protocol.

The recorder and the time-travel reads (``get endpoints --at``, ``events --for task/X``)
are written against this; ``registry.jetstream.membership`` implements it over JetStream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from registry.log.reader import Item
from registry.log.stored import StoredMessage

__all__ = ["MembershipLog"]


class MembershipLog(Protocol):
    @property
    def retention_s(self) -> int:
        """How long the stream keeps a transition."""
        ...

    async def append(self, subject: str, data: bytes, *, expected_last_subject_seq: int) -> int:
        """Store ``data`` on ``subject`` if its last sequence is still the expected one (0:
        none); its sequence. Raises ``WrongLastSequence`` when someone wrote first."""
        ...

    async def last(self, subject: str) -> StoredMessage | None:
        """The subject's last message, or None."""
        ...

    async def as_of(self, filter_subject: str, time_ns: int | None = None) -> list[StoredMessage]:
        """The last message of every subject matching ``filter_subject`` stored before
        ``time_ns`` (None: now): the state of every task at that moment."""
        ...

    async def history(
        self, subject: str, *, since_ns: int | None = None, limit: int = 1000
    ) -> list[StoredMessage]:
        """The messages of ``subject`` (stored from ``since_ns`` on), oldest first, at most
        ``limit`` (the newest ``limit``)."""
        ...

    async def first_time_ns(self) -> int | None:
        """When the oldest message still kept was stored (None: the stream is empty)."""
        ...

    def follow(self, filter_subject: str) -> AsyncGenerator[Item, None]:
        """The state now, then every change: the last message of every subject matching
        ``filter_subject``, ``CAUGHT_UP``, then each message stored after, in order, with
        no gap, for as long as it is iterated (``aclose`` ends it). Messages as
        ``history`` gives them."""
        ...
