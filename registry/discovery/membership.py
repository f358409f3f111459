"""Membership: what the history last recorded of each task, and the transitions a task's
current liveness calls for. Pure: the recorder (``registry.discovery.recorder``) does the
reading and writing, and the time-travel reads fold the same records.

A transition is recorded when what a reader routes by changes: a task joins (a new run of
an announcer under its name), its readiness changes (ready, draining, or why not), or it
leaves. Heartbeats that renew the same state are never transitions. The comparison is
always against what the history holds, not against what this process saw last, so a
second recorder, or this one after a restart, records nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from events.codec import DecodeError
from events.membership import (
    MembershipEvent,
    RecordingResumed,
    TaskJoined,
    TaskLeft,
    TaskReadinessChanged,
    Transition,
    decode_membership,
    parse_member_subject,
)
from events.task import Task
from registry.discovery.tasks import LiveTask, TaskKey
from registry.log.entry import Skipped
from registry.log.stored import StoredMessage

__all__ = ["Departure", "Member", "Members", "member_from", "moment", "nanoseconds", "transitions"]


@dataclass(frozen=True, slots=True)
class Member:
    """A task as the history last recorded it: live (with the task) or gone, as of the
    membership message ``seq`` (the next write goes on top of it)."""

    key: TaskKey
    instance: str
    task: Task | None  # None: gone
    seq: int
    at_ns: int
    event: Transition

    @property
    def live(self) -> bool:
        return self.task is not None


@dataclass(frozen=True, slots=True)
class Departure:
    """How a task stopped being live, as the message that ended it says."""

    how: str  # "withdrawn", "expired" or "unreadable"
    reason: str | None = None


def member_from(
    message: StoredMessage, on_skipped: Callable[[Skipped], None] = lambda _: None
) -> Member | None:
    """The member a stored transition says, or None (reported) if it cannot be read or
    is not on its own task's subject."""
    try:
        key = parse_member_subject(message.subject)
        event = decode_membership(message.data)
    except (ValueError, DecodeError) as exc:
        on_skipped(Skipped(message.seq, message.subject, str(exc)))
        return None
    if isinstance(event, RecordingResumed):
        on_skipped(Skipped(message.seq, message.subject, "a recorder's note on a task subject"))
        return None
    named = event.task.key
    if named != key:
        reason = f"a transition of {named[0]}/{named[1]} on the subject of {key[0]}/{key[1]}"
        on_skipped(Skipped(message.seq, message.subject, reason))
        return None
    task = None if isinstance(event, TaskLeft) else event.task
    return Member(key, event.instance, task, message.seq, nanoseconds(event.at), event)


def nanoseconds(moment: datetime) -> int:
    """A moment as nanoseconds since the epoch (the server's stamps), to the microsecond."""
    return int(moment.timestamp() * 1_000_000) * 1000


def moment(ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC moment."""
    return datetime.fromtimestamp(ns / 1e9, UTC)


def _state(task: Task) -> tuple[bool, bool, str | None]:
    return task.ready, task.draining, task.reason


def transitions(
    member: Member | None,
    live: LiveTask | None,
    *,
    at_ns: int,
    source_seq: int,
    departure: Departure,
    exact: bool = True,
    after_ns: int | None = None,
) -> list[Transition]:
    """What to record so the history says ``live`` (None: the task is not live), given
    what it says now (``member``); empty when it already says so.

    ``at_ns`` and ``source_seq`` are the liveness message read; ``exact=False`` marks
    what a recorder catching up found changed (it happened between ``after_ns`` and
    ``at_ns``)."""
    at = moment(at_ns)
    after = None if exact or after_ns is None else moment(after_ns)
    common = {"at": at, "source_seq": source_seq, "exact": exact, "after": after}
    was = member if member is not None and member.live else None
    if live is None:
        if was is None:
            return []
        assert was.task is not None
        how = (
            departure.how if departure.how in ("withdrawn", "expired", "unreadable") else "unknown"
        )
        return [
            TaskLeft(
                **common,
                instance=was.instance,
                task=was.task,
                how=how,
                reason=departure.reason,
            )
        ]
    task = live.as_task()
    if was is not None and was.instance == live.instance:
        assert was.task is not None
        if _state(was.task) == _state(task):
            return []
        return [TaskReadinessChanged(**common, instance=live.instance, task=task)]
    events: list[Transition] = []
    if was is not None:  # another run took the name over
        assert was.task is not None
        events.append(
            TaskLeft(
                **common,
                instance=was.instance,
                task=was.task,
                how="replaced",
                reason=f"taken over by instance {live.instance[:12]}",
            )
        )
    if not exact and after is not None:
        # It joined no earlier than its announcer began, nor than the history's last word.
        common["after"] = max(after, live.since)
    events.append(TaskJoined(**common, instance=live.instance, since=live.since, task=task))
    return events


class Members:
    """What the history last recorded of every task."""

    def __init__(self, on_skipped: Callable[[Skipped], None] = lambda _: None) -> None:
        self.by_key: dict[TaskKey, Member] = {}
        self.on_skipped = on_skipped
        self.latest_ns = 0  # the newest transition recorded

    def load(self, messages: Iterable[StoredMessage]) -> None:
        for message in messages:
            member = member_from(message, self.on_skipped)
            if member is not None:
                self.set(member)

    def set(self, member: Member) -> None:
        self.by_key[member.key] = member
        self.latest_ns = max(self.latest_ns, member.at_ns)

    def recorded(self, key: TaskKey, event: MembershipEvent, seq: int) -> None:
        """A transition this process wrote at ``seq``."""
        assert not isinstance(event, RecordingResumed)
        task = None if isinstance(event, TaskLeft) else event.task
        self.set(Member(key, event.instance, task, seq, nanoseconds(event.at), event))

    def get(self, key: TaskKey) -> Member | None:
        return self.by_key.get(key)

    def live(self) -> list[Member]:
        return [m for m in self.by_key.values() if m.live]
