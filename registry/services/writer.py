"""The conditional write of one service's subject (with the addresses it takes and gives
up), decided on its current state (``registry.services.current``, the read side, which a
read loads without this module).

A writer decides only when the subject's last message is the last event this code can
read, since deciding over an event it cannot read would be guessing (``decidable``,
``UnreadableHistory``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar, Unpack

from events import Event
from events.service import LiveEvent
from registry.errors import Conflict, UnreadableHistory
from registry.log.entry import Skipped, read_entry
from registry.log.port import Log, WrongLastSequence
from registry.services.batch import Prepared, Signing, compose, request_for
from registry.services.current import Read, read_current
from registry.services.decisions import Current
from registry.services.projection import ServiceRecord
from registry.services.projector import SkipHandler

if TYPE_CHECKING:
    from registry.addresses.allocator import Allocator

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_ATTEMPTS",
    "Signing",
    "Writer",
    "Written",
    "decidable",
    "prepare",
    "read_current",
    "write",
]

E = TypeVar("E", bound=Event)

# How many appends bulk writes keep in flight by default: enough to hide a round trip per
# write, few enough that a refused batch stops quickly.
DEFAULT_CONCURRENCY = 256

# A write re-decides after losing a race; losing this often in a row means the service is
# being hammered, and the caller should hear about it.
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Writer:
    """What every write of one registry shares, single or bulk: the log, the allocator,
    where skipped messages are reported, how long a write waits out a silent server, and
    how it signs (``registry.services.proof``; None: unsigned)."""

    log: Log
    allocator: Allocator
    on_skipped: SkipHandler
    retry_for: float = 10.0
    sign: Signing | None = None


@dataclass(frozen=True, slots=True)
class Written(Generic[E]):
    """One write's result: the service event's sequence, the event, its bytes and the
    headers stored with it, and the state it was decided on."""

    seq: int
    event: E
    data: bytes
    headers: Mapping[str, str]
    decided_on: Current

    def record(self) -> ServiceRecord:
        """The service as this write left it (a write that leaves it live)."""
        event = self.event
        assert isinstance(event, LiveEvent), f"{event.type} leaves no live service"
        return ServiceRecord.from_event(self.seq, event, self.data, self.headers)


async def decidable(
    log: Log,
    namespace: str,
    name: str,
    on_skipped: SkipHandler,
    **read: Unpack[Read],
) -> Current:
    """The current state, if this version can read it: a writer never guesses."""
    current = await read_current(log, namespace, name, on_skipped, **read)
    if current.last is not None and (
        current.entry is None or current.entry.seq != current.last.seq
    ):
        problem = read_entry(current.last)
        reason = problem.reason if isinstance(problem, Skipped) else "unreadable"
        raise UnreadableHistory(namespace, name, current.last.seq, reason)
    return current


async def prepare(
    writer: Writer,
    namespace: str,
    name: str,
    decide: Callable[[Current], E],
    *,
    current: Current | None = None,
    over_unreadable: bool = False,
) -> tuple[Prepared[E], Current]:
    """Read the service's state (unless given), decide, settle the addresses the decision
    takes and gives up, and compose the batch: everything of a write but sending it (a
    dry run stops here). ``over_unreadable`` lets ``decide`` see a state whose last
    message cannot be read (a forced delete); otherwise such a state is refused first."""
    if current is None:
        read = read_current if over_unreadable else decidable
        current = await read(
            writer.log, namespace, name, writer.on_skipped, retry_for=writer.retry_for
        )
    event = decide(current)
    request = request_for(current, event)
    allocation = await writer.allocator.settle(request) if request is not None else None
    return compose(current, event, allocation, sign=writer.sign), current


async def write(
    writer: Writer,
    namespace: str,
    name: str,
    decide: Callable[[Current], E],
    *,
    current: Current | None = None,
    over_unreadable: bool = False,
) -> Written[E]:
    """Decide on the service's current state and append the event, with the records of
    the addresses it takes and gives up, as one conditional atomic batch.

    The server stores the batch only if the service's subject and every address subject
    still end where they were read; after a lost race everything is read and decided
    again (it is usually a refusal then, or another free address). ``current`` saves the
    first read when the caller already has it.
    """
    for _ in range(MAX_ATTEMPTS):
        prepared, current = await prepare(
            writer, namespace, name, decide, current=current, over_unreadable=over_unreadable
        )
        try:
            seqs = await writer.log.append_batch(prepared.messages, retry_for=writer.retry_for)
        except WrongLastSequence:
            current = None  # someone wrote first: decide again on what they wrote
            continue
        return Written(seqs[0], prepared.event, prepared.data, prepared.headers, current)
    raise Conflict(namespace, name)
