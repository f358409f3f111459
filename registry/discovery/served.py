"""Who served a service at a moment: the service as the log says it was then, and the
tasks the membership history says were live then, matched by its selector then.

One multi-last read of the namespace's task subjects as of the moment (the server keeps
a per-subject index; the cost follows the namespace's tasks, not the transitions kept),
and the recorders' notes, which say when nobody recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from events.codec import DecodeError
from events.membership import (
    MEMBERSHIP_PREFIX,
    RECORDER_SUBJECT,
    RecordingResumed,
    Transition,
    decode_membership,
    member_subject,
)
from events.task import Task
from registry.discovery.endpoints import Endpoints, endpoints_for
from registry.discovery.membership import Members, member_from, nanoseconds
from registry.discovery.membership import moment as moment_of
from registry.log.entry import Skipped
from registry.log.port import Log
from registry.services.projection import ServiceRecord

__all__ = ["Served", "recent_transitions", "served_at", "served_many", "task_transitions"]


@dataclass(frozen=True)
class Served:
    """A service's endpoints at ``moment``, and what the history cannot vouch for."""

    record: ServiceRecord
    endpoints: Endpoints
    moment: datetime
    caveats: list[str] = field(default_factory=list)


async def served_at(
    log: Log,
    record: ServiceRecord,
    moment: datetime,
    on_skipped: Callable[[Skipped], None] | None = None,
    site: str | None = None,
) -> Served:
    """``record`` (the service as it was at ``moment``) with the tasks live then (at
    ``site``: those the hub's copy of that site's history says were live there)."""
    (served,) = await served_many(log, [record], moment, on_skipped, site)
    return served


async def served_many(
    log: Log,
    records: Sequence[ServiceRecord],
    moment: datetime,
    on_skipped: Callable[[Skipped], None] | None = None,
    site: str | None = None,
) -> list[Served]:
    """Each of ``records`` (services as they were at ``moment``) with the tasks live
    then: each namespace's tasks, and the recorders' notes, read once for all (at
    ``site``: from the hub's copy of that site's history)."""
    membership = await log.membership(site=site)
    moment_ns = nanoseconds(moment)
    tasks: dict[str, list[Task]] = {}
    for namespace in dict.fromkeys(r.service.namespace for r in records):
        messages = await membership.as_of(f"{MEMBERSHIP_PREFIX}.{namespace}.*", moment_ns)
        members = Members(on_skipped or (lambda _: None))
        members.load(messages)
        tasks[namespace] = [m.task for m in members.live() if m.task is not None]
    caveats: list[str] = []
    first = await membership.first_time_ns()
    if first is None or first > moment_ns:
        start = "nothing yet" if first is None else moment_of(first).isoformat(timespec="seconds")
        caveats.append(
            f"the membership history starts at {start} (kept {membership.retention_s // 86400}d"
            "): nobody is known to have served before"
        )
    for note in await _notes(log, site):
        after = note.after
        if after is not None and after <= moment <= note.at:
            caveats.append(
                f"no recorder ran from {after.isoformat(timespec='seconds')} to "
                f"{note.at.isoformat(timespec='seconds')}: tasks that came and went then left "
                "no trace, and changes found later have inexact times"
            )
    return [
        Served(r, endpoints_for(r.service, tasks[r.service.namespace]), moment, list(caveats))
        for r in records
    ]


async def _notes(log: Log, site: str | None = None) -> list[RecordingResumed]:
    membership = await log.membership(site=site)
    notes = []
    for message in await membership.history(RECORDER_SUBJECT, limit=1000):
        try:
            event = decode_membership(message.data)
        except DecodeError:
            continue
        if isinstance(event, RecordingResumed):
            notes.append(event)
    return notes


async def task_transitions(
    log: Log,
    namespace: str,
    name: str,
    *,
    since: datetime | None = None,
    limit: int = 1000,
    site: str | None = None,
) -> list[tuple[int, Transition]]:
    """A task's transitions (recorded from ``since`` on), oldest first, the newest
    ``limit``, as ``(stored time, transition)``; what cannot be read is left out. With
    ``site``, a task of that site, from the hub's copy of its history: each transition's
    time is when it happened there (a copy stores it when it arrived, after a cut long
    after), so ``since`` is applied to that time too."""
    membership = await log.membership(site=site)
    found: list[tuple[int, Transition]] = []
    start = None if since is None else nanoseconds(since)
    subject = member_subject(namespace, name)
    for message in await membership.history(subject, since_ns=start, limit=limit):
        member = member_from(message)
        if member is not None and (start is None or message.time_ns >= start):
            found.append((message.time_ns, member.event))
    return found


async def recent_transitions(
    log: Log,
    namespace: str,
    selector: dict[str, str],
    *,
    since: datetime,
    limit: int = 10,
) -> list[Transition]:
    """The transitions since ``since`` of the tasks of ``namespace`` that ``selector``
    picks, newest first, at most ``limit`` (``describe service``'s Membership)."""
    from registry.discovery.endpoints import selects

    membership = await log.membership()
    messages = await membership.history(
        f"{MEMBERSHIP_PREFIX}.{namespace}.*", since_ns=nanoseconds(since), limit=10_000
    )
    chosen = [
        member.event
        for message in messages
        if (member := member_from(message)) is not None
        and selects(selector, member.event.task.labels)
    ]
    return chosen[::-1][:limit]
