"""One service's subject as writers and ``get`` see it: its current state, and the
conditional write on top of it. Single and bulk writes both go through ``write``.

The state is the subject's last message and the last event this code can read; a writer
decides only when the two are the same message, since deciding over an event it cannot
read would be guessing (``UnreadableHistory``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from events import Event, encode, subject_for
from events.stream import MAX_EVENT_BYTES
from registry.commands import Current
from registry.entry import Entry, Skipped, read_entry
from registry.errors import Conflict, InvalidInput, UnreadableHistory
from registry.projector import SkipHandler, last_readable
from registry.stored import StoredMessage
from registry.transport import Log, WrongLastSequence

__all__ = ["DEFAULT_CONCURRENCY", "MAX_ATTEMPTS", "decidable", "read_current", "write"]

E = TypeVar("E", bound=Event)
Signing = Callable[[str, bytes], Mapping[str, str]]  # (subject, event bytes) -> headers

# How many appends bulk writes keep in flight by default: enough to hide a round trip per
# write, few enough that a refused batch stops quickly.
DEFAULT_CONCURRENCY = 256

# A write re-decides after losing a race; losing this often in a row means the service is
# being hammered, and the caller should hear about it.
MAX_ATTEMPTS = 5

_UNREAD = object()


async def read_current(
    log: Log,
    namespace: str,
    name: str,
    on_skipped: SkipHandler,
    *,
    last: StoredMessage | object | None = _UNREAD,
    retry_for: float = 10.0,
) -> Current:
    """The subject's last message and last readable event: one direct get, usually.

    ``last`` saves the direct get when the caller fetched the message already (bulk).
    """
    subject = subject_for(namespace, name)
    message = await log.last(subject, retry_for=retry_for) if last is _UNREAD else last
    if message is None:
        return Current(None, None)
    assert isinstance(message, StoredMessage)
    entry = read_entry(message)
    if isinstance(entry, Entry):
        return Current(message, entry)
    on_skipped(entry)
    return Current(message, await last_readable(log, subject, lambda _: None))


async def decidable(
    log: Log,
    namespace: str,
    name: str,
    on_skipped: SkipHandler,
    *,
    last: StoredMessage | object | None = _UNREAD,
    retry_for: float = 10.0,
) -> Current:
    """The current state, if this version can read it: a writer never guesses."""
    current = await read_current(log, namespace, name, on_skipped, last=last, retry_for=retry_for)
    if current.last is not None and (
        current.entry is None or current.entry.seq != current.last.seq
    ):
        problem = read_entry(current.last)
        reason = problem.reason if isinstance(problem, Skipped) else "unreadable"
        raise UnreadableHistory(namespace, name, current.last.seq, reason)
    return current


async def write(
    log: Log,
    namespace: str,
    name: str,
    decide: Callable[[Current], E],
    on_skipped: SkipHandler,
    *,
    current: Current | None = None,
    retry_for: float = 10.0,
    sign: Signing | None = None,
    over_unreadable: bool = False,
) -> tuple[int, E, bytes, Mapping[str, str], Current]:
    """Decide on the service's current state and append the event, conditionally.

    The server appends only if the subject still ends where the decision read it; after
    a lost race the state is read again and the decision made again (it is usually a
    refusal then). ``sign`` gives the headers that prove who wrote it (``registry.proof``).
    ``over_unreadable`` lets ``decide`` see a state whose last message cannot be read (a
    forced delete); otherwise such a state is refused before ``decide`` runs.
    Returns the sequence, the event, its bytes, the headers stored with it and the state
    it was decided on. ``current`` saves the first read when the caller already has it.
    """
    subject = subject_for(namespace, name)
    for _ in range(MAX_ATTEMPTS):
        if current is None:
            read = read_current if over_unreadable else decidable
            current = await read(log, namespace, name, on_skipped, retry_for=retry_for)
        event = decide(current)
        data = encode(event)
        if len(data) > MAX_EVENT_BYTES:
            raise InvalidInput(
                "service",
                f"{namespace}/{name}",
                f"its event would be {len(data)} bytes; the registry stores at most "
                f"{MAX_EVENT_BYTES} (fewer or shorter labels and ports)",
            )
        headers = sign(subject, data) if sign is not None else {}
        try:
            seq = await log.append(
                subject,
                data,
                msg_id=event.id,
                expected_last_subject_seq=current.expected_seq,
                retry_for=retry_for,
                headers=headers,
            )
        except WrongLastSequence:
            current = None  # someone wrote first: decide again on what they wrote
            continue
        return seq, event, data, headers, current
    raise Conflict(namespace, name)
