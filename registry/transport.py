"""What the registry needs from the server, as one interface: the ``Log`` protocol.

The decisions, the reads, the fold, the bulk writes, watch, history and subscriptions are
written against these types and nothing else, so they exist once whatever carries the
bytes. ``registry.jetstream.JetStreamLog`` implements them over NATS JetStream. Nothing
here imports NATS or the event models: a log is bytes at sequences on subjects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Protocol, Self

from registry.stored import MSG_ID, StoredMessage

if TYPE_CHECKING:
    from registry.liveness import Liveness

__all__ = [
    "CAUGHT_UP",
    "FROM_THE_START",
    "MAX_BATCH",
    "MSG_ID",
    "RESTARTED",
    "CaughtUp",
    "Checkpoint",
    "Checkpoints",
    "Item",
    "Log",
    "Outgoing",
    "Reader",
    "Restarted",
    "Start",
    "StoredMessage",
    "WrongLastSequence",
]


@dataclass(frozen=True, slots=True)
class Start:
    """Where an ordered read begins."""

    policy: Literal["all", "last_per_subject", "new", "seq", "time"] = "all"
    seq: int | None = None
    time: datetime | None = None


class CaughtUp:
    """Marker a reader gets once, when everything stored at its start has been delivered."""

    def __repr__(self) -> str:
        return "CAUGHT_UP"


CAUGHT_UP: Final = CaughtUp()


class Restarted:
    """Marker a reader of the liveness stream gets when its read starts over: what follows,
    up to the next ``CAUGHT_UP``, is the current state again, replacing what it had."""

    def __repr__(self) -> str:
        return "RESTARTED"


RESTARTED: Final = Restarted()

FROM_THE_START: Final = Start()

# The most messages one atomic write may hold (JetStream's limit per batch).
MAX_BATCH: Final = 1000

Item = StoredMessage | CaughtUp | Restarted


@dataclass(frozen=True, slots=True)
class Outgoing:
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


class Reader(Protocol):
    """An ordered read of the log, filtered on the server: every matching message once, in
    stream order, with no gap (a gap is re-read, never skipped); ``CAUGHT_UP`` once when
    everything stored at the start has been delivered. Live readers go on after it."""

    @property
    def last_seq(self) -> int:
        """Stream sequence of the last message handed over."""
        ...

    @property
    def last_heard(self) -> float:
        """Event-loop time of the last message or heartbeat the server sent this read:
        how fresh what it handed over is known to be."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> Item:
        """One item at a time; any number of loops may take turns on one reader."""
        ...

    async def next_batch(self) -> list[Item]:
        """Everything delivered so far, waiting for at least one item; [] once closed."""
        ...

    def push_back(self, items: Sequence[Item]) -> None:
        """Return unread items to the front, for a reader that took more than it used."""
        ...


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
        self, messages: Sequence[Outgoing], *, retry_for: float = 10.0
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
