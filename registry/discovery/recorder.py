"""The recorder: reads the liveness stream and writes each task's transitions once into
the membership history (``events.membership``).

It keeps no state of its own: at start it reads what the history last says of every
task, then the liveness stream's current state (what the server still holds: each
subject's last heartbeat, withdrawal or expiry marker) and then every new message. Where
the current state differs from the history, it records the difference, marked inexact
(it happened while no recorder read) unless the message says exactly when (a withdrawal,
an expiry). Then it records every change as it is stored, exactly. A gap in the read (a
reconnect, a server restart) is caught up the same way. Each write goes on top of the
task subject's last membership sequence, so two recorders never write one transition
twice: the one that loses reads what the other wrote and compares again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from events.codec import DecodeError
from events.liveness import TASK_SUBJECTS, parse_task_subject
from events.membership import (
    MEMBERSHIP_PREFIX,
    RECORDER_SUBJECT,
    RecordingResumed,
    Transition,
    encode_membership,
    member_subject,
)
from events.stamps import utc_now
from events.task import TaskWithdrawn, decode_task_message
from registry.discovery.membership import (
    Departure,
    Member,
    Members,
    member_from,
    moment,
    transitions,
)
from registry.discovery.tasks import TaskKey, TaskView
from registry.log.entry import Skipped
from registry.log.port import Log, WrongLastSequence
from registry.log.reader import CAUGHT_UP, RESTARTED
from registry.log.stored import StoredMessage

__all__ = ["Recorder", "RecorderStats"]

_log = logging.getLogger(__name__)

_MARKER = "Nats-Marker-Reason"
_ATTEMPTS = 5  # writes that lose to another recorder, compared again each time
_IN_FLIGHT = 64  # tasks whose transitions are written at once
# What to record of one change, decided against what the history then holds.
Decide = Callable[[Member | None], list[Transition]]


@dataclass
class RecorderStats:
    """What a recorder did, for those who watch it and those who measure it."""

    written: int = 0  # transitions this recorder wrote
    lost: int = 0  # writes another recorder made first (compared again; not doubled)
    inexact: int = 0  # found by catching up


class Recorder:
    """Records membership from ``log``'s liveness stream into its membership history."""

    def __init__(
        self,
        log: Log,
        *,
        name: str | None = None,
        on_note: Callable[[str], None] | None = None,
        on_skipped: Callable[[Skipped], None] | None = None,
    ) -> None:
        self.log = log
        self.name = name or f"recorder@{socket.gethostname()}"[:200]
        self.on_note = on_note or (lambda text: _log.info("%s", text))
        self.members = Members(on_skipped or (lambda s: _log.debug("skipped %s", s)))
        self.stats = RecorderStats()
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Record until cancelled."""
        membership = await self.log.membership(create=True)
        liveness = await self.log.liveness()
        self.members.load(await membership.as_of(f"{MEMBERSHIP_PREFIX}.*.*"))
        view = TaskView()
        catching_up = True
        resumed_after = self.members.latest_ns or None
        found_late = 0
        async with liveness.read([TASK_SUBJECTS]) as reader:
            while True:
                batch = await reader.next_batch()
                if not batch:
                    return
                # What the batch changed, task by task in stream order; tasks apart are
                # written concurrently (each on its own subject), one task's in order.
                work: dict[TaskKey, list[Decide]] = {}
                for item in batch:
                    if item is RESTARTED:
                        found_late += await self._flush(work)
                        view, catching_up = TaskView(), True
                        resumed_after = self.members.latest_ns or None
                        found_late = 0
                        continue
                    if item is CAUGHT_UP:
                        found_late += await self._flush(work)
                        found_late += await self._gone_meanwhile(view, resumed_after)
                        if catching_up:
                            await self._resumed(resumed_after, found_late)
                            catching_up = False
                            self.caught_up.set()
                        continue
                    assert isinstance(item, StoredMessage)
                    read = self._read(item, view, catching_up, resumed_after)
                    if read is not None:
                        work.setdefault(read[0], []).append(read[1])
                found_late += await self._flush(work)

    async def _flush(self, work: dict[TaskKey, list[Decide]]) -> int:
        """Record what ``work`` holds (at most ``_IN_FLIGHT`` tasks at once); emptied."""
        if not work:
            return 0
        slots = asyncio.Semaphore(_IN_FLIGHT)

        async def one(key: TaskKey, decisions: list[Decide]) -> int:
            async with slots:
                late = 0
                for decide in decisions:
                    late += await self._record(key, decide)
                return late

        done = await asyncio.gather(*(one(k, d) for k, d in work.items()))
        work.clear()
        return sum(done)

    def _read(
        self, message: StoredMessage, view: TaskView, catching_up: bool, after_ns: int | None
    ) -> tuple[TaskKey, Decide] | None:
        """Fold one liveness message in; what to record of the change it made (None: a
        renewal, or nothing that changes a task)."""
        change = view.apply(message)
        if change is None:
            return None
        key = change.key
        live = view.task(key)
        departure = _departure(message) if live is None else Departure("withdrawn")
        # While catching up, the message read is the subject's last: a withdrawal says
        # exactly when and how the task left. An expiry marker does not say what expired
        # (a heartbeat, or a withdrawal kept for its second): gone by then, how unknown.
        exact = not catching_up or (live is None and departure.how == "withdrawn")
        if catching_up and departure.how == "expired":
            departure = Departure("unknown")

        def decide(member: Member | None) -> list[Transition]:
            return transitions(
                member,
                live,
                at_ns=message.time_ns,
                source_seq=message.seq,
                departure=departure,
                exact=exact,
                after_ns=after_ns,
            )

        return key, decide

    async def _gone_meanwhile(self, view: TaskView, after_ns: int | None) -> int:
        """Tasks the history holds live that the server no longer has (they left while
        nobody read, leaving no trace the server still holds): left, how unknown."""
        now_ns = time.time_ns()

        def gone(member: Member | None) -> list[Transition]:
            since = max(after_ns or 0, member.at_ns if member else 0)
            return transitions(
                member,
                None,
                at_ns=now_ns,
                source_seq=0,
                departure=Departure("unknown"),
                exact=False,
                after_ns=since,
            )

        work: dict[TaskKey, list[Decide]] = {
            member.key: [gone] for member in self.members.live() if view.task(member.key) is None
        }
        return await self._flush(work)

    async def _record(
        self,
        key: TaskKey,
        decide: Decide,
    ) -> int:
        """Write what ``decide`` says the history lacks, on top of what it holds; on
        losing to another recorder, read what it wrote and decide again."""
        membership = await self.log.membership()
        subject = member_subject(*key)
        late = 0
        for _ in range(_ATTEMPTS):
            pending = decide(self.members.get(key))
            if not pending:
                return late
            try:
                for event in pending:
                    member = self.members.get(key)
                    seq = await membership.append(
                        subject,
                        encode_membership(event),
                        expected_last_subject_seq=member.seq if member else 0,
                    )
                    self.members.recorded(key, event, seq)
                    self.stats.written += 1
                    if not event.exact:
                        self.stats.inexact += 1
                        late += 1
                return late
            except WrongLastSequence:
                self.stats.lost += 1
                stored = await membership.last(subject)
                other = member_from(stored, self.members.on_skipped) if stored else None
                if other is not None:
                    self.members.set(other)
        self.on_note(f"{key[0]}/{key[1]}: another writer kept moving its history; left as is")
        return late

    async def _resumed(self, after_ns: int | None, inexact: int) -> None:
        """Say, in the history, that what began and ended before now while no recorder
        read left no trace."""
        membership = await self.log.membership()
        note = RecordingResumed(
            at=utc_now(),
            after=None if after_ns is None else moment(after_ns),
            recorder=self.name,
            inexact=inexact,
        )
        last = await membership.last(RECORDER_SUBJECT)
        with contextlib.suppress(WrongLastSequence):  # another recorder's note: enough
            await membership.append(
                RECORDER_SUBJECT,
                encode_membership(note),
                expected_last_subject_seq=last.seq if last else 0,
            )
        since = "the start" if after_ns is None else moment(after_ns).isoformat()
        self.on_note(
            f"recording: caught up ({len(self.members.live())} live tasks); {inexact} "
            f"transitions since {since} found by catching up"
        )


def _departure(message: StoredMessage) -> Departure:
    """How the task of ``message`` left, as that message says."""
    if _MARKER in message.headers:
        return Departure("expired")
    try:
        parse_task_subject(message.subject)
        said = decode_task_message(message.data)
    except (ValueError, DecodeError):
        return Departure("unreadable")
    if isinstance(said, TaskWithdrawn):
        return Departure("withdrawn", said.reason)
    return Departure("unreadable")  # a heartbeat the view refused: not one a reader takes
