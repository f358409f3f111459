"""What the registry needs from the server, as one interface: the ``Log`` protocol.

The decisions, the reads, the fold, the bulk writes, watch, history and subscriptions are
written against these types and nothing else, so they exist once whatever carries the
bytes. ``registry.jetstream.log.JetStreamLog`` implements them over NATS JetStream.
Nothing here imports NATS or the event models: a log is bytes at sequences on subjects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from registry.log.membership import MembershipLog
from registry.log.reader import FROM_THE_START, Reader, Start
from registry.log.stored import StoredMessage

if TYPE_CHECKING:
    from registry.log.liveness import Liveness

__all__ = [
    "MAX_BATCH",
    "Checkpoint",
    "Checkpoints",
    "ConditionalMessage",
    "Log",
    "WrongLastSequence",
]

# The most messages one atomic write may hold (JetStream's limit per batch).
MAX_BATCH: Final = 1000


@dataclass(frozen=True, slots=True)
class ConditionalMessage:
    """One message of a write: its subject and bytes, the id that makes a retry harmless,
    and the subject sequence it must still find in place (0: the subject is empty)."""

    subject: str
    data: bytes
    msg_id: str
    expected_last_subject_seq: int
    headers: Mapping[str, str] = field(default_factory=dict)


class WrongLastSequence(Exception):
    """The subject moved on since it was read: someone else wrote first."""

    def __init__(self, subject: str) -> None:
        super().__init__(subject)
        self.subject = subject


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a durable subscriber stands: the last sequence it acknowledged."""

    seq: int
    filter_subject: str
    revision: int  # of the stored checkpoint, for the next compare-and-set


class Checkpoints(Protocol):
    """Where durable subscriptions keep their place; every save is a compare-and-set."""

    async def load(self, name: str) -> Checkpoint | None: ...

    async def save(
        self, name: str, seq: int, filter_subject: str, revision: int, *, retry_for: float = 10.0
    ) -> int:
        """Store ``seq`` over ``revision`` (0: none yet); returns the new revision.
        Raises ``CheckpointConflict`` when another process saved in between."""
        ...


class Log(Protocol):
    """The service log on a server: conditional appends, reads by subject, ordered reads."""

    @property
    def url(self) -> str:
        """Where it is, for messages (passwords masked)."""
        ...

    @property
    def is_connected(self) -> bool:
        """Up now (a long-lived reader says how stale it is while it is not)."""
        ...

    async def close(self) -> None: ...

    async def authenticated_user(self) -> str | None:
        """The user the server authenticated this connection as; None when it does not say."""
        ...

    async def append(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str,
        expected_last_subject_seq: int,
        retry_for: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """Append if the subject's last sequence is still ``expected_last_subject_seq``
        (0: the subject is empty), with ``headers`` stored beside it (a signature);
        returns the new message's sequence.

        Idempotent: retried with the same ``msg_id`` while the server is away, and a
        retry that finds its own earlier write is success. Raises ``WrongLastSequence``
        when someone else wrote first.
        """
        ...

    async def append_batch(
        self, messages: Sequence[ConditionalMessage], *, retry_for: float = 10.0
    ) -> list[int]:
        """Append all of ``messages`` or none of them, each only if its subject's last
        sequence is still the expected one; their sequences, in order. At most one message
        per subject, and at most ``MAX_BATCH`` messages.

        Idempotent like ``append``: a retry that finds every one of its messages stored is
        success. Raises ``WrongLastSequence`` (naming the first subject: the server does
        not say which condition failed) when any of them was written over first.
        """
        ...

    async def last(self, subject: str, *, retry_for: float = 10.0) -> StoredMessage | None:
        """The subject's last message, or None if it has none."""
        ...

    async def last_many(self, subjects: Sequence[str]) -> dict[str, StoredMessage]:
        """The last message of each of ``subjects`` that has one, by subject."""
        ...

    async def before_many(
        self, places: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], StoredMessage | None]:
        """For each ``(subject, seq)``, the message before ``seq`` on ``subject``, or None
        if there is none: where a signed event stands in its chain (``placed``). A place
        the server could not answer for certain (a replica behind) is left out."""
        ...

    async def last_sequence(self) -> int:
        """The stream sequence of the newest message in the log (0: empty)."""
        ...

    def read(
        self, filters: Sequence[str], start: Start = FROM_THE_START, *, heartbeat: float = 1.0
    ) -> Reader:
        """An ordered read of the messages matching ``filters`` from ``start``."""
        ...

    async def checkpoints(self) -> Checkpoints: ...

    async def liveness(self) -> Liveness:
        """The stream where tasks announce themselves and expire (created if missing)."""
        ...

    async def membership(self, *, create: bool = False, site: str | None = None) -> MembershipLog:
        """The membership history (``events.membership``); ``create``: make it if it is
        missing (a recorder does; a reader finds ``NotRecorded`` instead). ``site``: the
        hub's copy of that site's history instead (``events.sites``), read only."""
        ...
