"""Live tasks as one read of the liveness stream tells them: the fold of heartbeats,
withdrawals and subject delete markers. Pure: no I/O, so it is tested without a server.

A task is stored on one subject per label, and each subject is folded on its own: its
last message is a valid heartbeat (the task is live there), or anything else (a
withdrawal, the server's marker, garbage), which means it is not. A task is live while
any of its subjects is, as its newest heartbeat says.

Every message is untrusted: a heartbeat counts only if it decodes, names the task of its
subject, carries the label its subject claims, and has a TTL the server will enforce.
Anything else is skipped with the reason. A renewal (the same bytes again) is not
validated twice: a reader of fifty thousand tasks would otherwise spend its time on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from events.codec import DecodeError
from events.liveness import MAX_TTL_S, MIN_TTL_S, parse_task_subject
from events.task import Task, TaskHeartbeat, decode_task_message
from registry.log.entry import Skipped
from registry.log.stored import StoredMessage

__all__ = ["LiveTask", "TaskChange", "TaskKey", "TaskView", "parse_ttl"]

TaskKey = tuple[str, str]  # (namespace, name)

_MARKER = "Nats-Marker-Reason"
_ROLLUP = "Nats-Rollup"
_TTL = "Nats-TTL"
_DURATION = re.compile(r"(\d{1,7})(s|m|h)?")
_UNIT = {None: 1, "s": 1, "m": 60, "h": 3600}


def parse_ttl(value: str | None) -> int | None:
    """A stored ``Nats-TTL`` in whole seconds, or None if the server would not expire the
    message within ``MAX_TTL_S`` by it (missing, ``never``, garbage)."""
    match = _DURATION.fullmatch(value or "")
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    return seconds if MIN_TTL_S <= seconds <= MAX_TTL_S else None


@dataclass(slots=True)
class LiveTask:
    """A task as its newest heartbeat on one subject says, and when the server stored it."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    address: str
    cluster: str | None
    ready: bool
    instance: str
    since: datetime
    ttl: int
    seq: int
    heard_ns: int  # the server's time of the last heartbeat
    ports: Mapping[str, int] = field(default_factory=dict)  # its named ports
    draining: bool = False
    reason: str | None = None  # why it is not ready

    @classmethod
    def from_heartbeat(cls, beat: TaskHeartbeat, ttl: int, message: StoredMessage) -> LiveTask:
        task = beat.task
        return cls(
            task.namespace,
            task.name,
            task.labels,
            task.address,
            task.cluster,
            task.ready,
            beat.instance,
            beat.since,
            ttl,
            message.seq,
            message.time_ns,
            task.ports,
            task.draining,
            task.reason,
        )

    @property
    def key(self) -> TaskKey:
        return (self.namespace, self.name)

    def as_task(self) -> Task:
        """The task as its heartbeat announced it."""
        return Task.model_construct(
            namespace=self.namespace,
            name=self.name,
            labels=dict(self.labels),
            address=self.address,
            cluster=self.cluster,
            ready=self.ready,
            ports=dict(self.ports),
            draining=self.draining,
            reason=self.reason,
        )

    @property
    def heard(self) -> datetime:
        return datetime.fromtimestamp(self.heard_ns / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class TaskChange:
    """What one message did to a task: its newest heartbeat before and after."""

    key: TaskKey
    before: LiveTask | None
    after: LiveTask | None

    @property
    def labels(self) -> set[tuple[str, str]]:
        """Every label the task had before or has after: the services it may concern."""
        return {
            item
            for live in (self.before, self.after)
            if live is not None
            for item in live.labels.items()
        }


@dataclass
class TaskView:
    """Live tasks by subject, and by task."""

    on_skipped: Callable[[Skipped], None] = lambda _: None
    by_subject: dict[str, LiveTask] = field(default_factory=dict)
    by_task: dict[TaskKey, dict[str, LiveTask]] = field(default_factory=dict)
    # (namespace, label key, label value) -> the tasks live on that label's subject.
    by_label: dict[tuple[str, str, str], set[TaskKey]] = field(default_factory=dict)
    # A roll-up emptied (part of) the stream without markers: read it again.
    rolled_up: bool = False
    _bytes: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def apply(self, message: StoredMessage) -> TaskChange | None:
        """Fold one message in; what it did to its task (None for a renewal of the same
        heartbeat, or a message that names no task)."""
        subject = message.subject
        headers = message.headers
        if headers.get(_ROLLUP) == "all":
            self.rolled_up = True
        raw = (message.data, headers.get(_TTL) or "")
        known = self._bytes.get(subject)
        if known is not None and known == raw and _MARKER not in headers:
            renewed = self.by_subject[subject]
            renewed.seq, renewed.heard_ns = message.seq, message.time_ns
            return None
        try:
            namespace, name, label = parse_task_subject(subject)
        except ValueError as exc:
            self.on_skipped(Skipped(message.seq, subject, str(exc)))
            return None
        live = None if _MARKER in headers else self._heartbeat(message, namespace, name, label)
        return self._set((namespace, name), subject, label, live, raw)

    def _heartbeat(
        self,
        message: StoredMessage,
        namespace: str,
        name: str,
        label: tuple[str, str] | None,
    ) -> LiveTask | None:
        """The live task this message proves, or None (with the reason reported)."""
        try:
            beat = decode_task_message(message.data)
        except DecodeError as exc:
            return self._skip(message, str(exc))
        if not isinstance(beat, TaskHeartbeat):
            return None  # withdrawn
        task = beat.task
        if (task.namespace, task.name) != (namespace, name):
            return self._skip(
                message,
                f"heartbeat of {task.namespace}/{task.name} stored under {namespace}/{name}",
            )
        if label is None and task.labels:
            return self._skip(message, "a task with labels stored on its unlabelled subject")
        if label is not None and task.labels.get(label[0]) != label[1]:
            return self._skip(message, f"the task lacks the label {label[0]}={label[1]}")
        stated = message.headers.get(_TTL)
        ttl = parse_ttl(stated)
        if ttl is None:
            reason = (
                "no Nats-TTL header: it would not expire"
                if stated is None
                else f"Nats-TTL {stated[:40]!r} is not {MIN_TTL_S} to {MAX_TTL_S} whole seconds"
            )
            return self._skip(message, reason)
        return LiveTask.from_heartbeat(beat, ttl, message)

    def _skip(self, message: StoredMessage, reason: str) -> LiveTask | None:
        """Report it; the subject then holds no valid heartbeat (None)."""
        self.on_skipped(Skipped(message.seq, message.subject, reason))
        return None

    def _set(
        self,
        key: TaskKey,
        subject: str,
        label: tuple[str, str] | None,
        live: LiveTask | None,
        raw: tuple[bytes, str],
    ) -> TaskChange | None:
        before = self.task(key)
        subjects = self.by_task.get(key)
        index = None if label is None else (key[0], *label)
        if live is None:
            self._bytes.pop(subject, None)
            self.by_subject.pop(subject, None)
            if subjects is not None:
                subjects.pop(subject, None)
                if not subjects:
                    del self.by_task[key]
            if index is not None and (carrying := self.by_label.get(index)) is not None:
                carrying.discard(key)
                if not carrying:
                    del self.by_label[index]
        else:
            self._bytes[subject] = raw
            self.by_subject[subject] = live
            self.by_task.setdefault(key, {})[subject] = live
            if index is not None:
                self.by_label.setdefault(index, set()).add(key)
        if before is None and live is None:
            return None
        return TaskChange(key, before, self.task(key))

    def task(self, key: TaskKey) -> LiveTask | None:
        """The task's newest heartbeat among its live subjects, or None if it has none."""
        subjects = self.by_task.get(key)
        if not subjects:
            return None
        return max(subjects.values(), key=lambda live: live.seq)

    def tasks(self, namespace: str | None = None) -> list[LiveTask]:
        """Live tasks (of one namespace, or all), ordered by namespace then name."""
        keys = sorted(k for k in self.by_task if namespace is None or k[0] == namespace)
        return [live for key in keys if (live := self.task(key)) is not None]

    def carrying(self, namespace: str, key: str, value: str) -> list[LiveTask]:
        """Live tasks of ``namespace`` stored under the label ``key=value``."""
        keys = self.by_label.get((namespace, key, value), ())
        return [live for k in keys if (live := self.task(k)) is not None]

    def feed(self, messages: Iterable[StoredMessage]) -> list[TaskChange]:
        """Fold many; what they did, in order."""
        return [change for message in messages if (change := self.apply(message)) is not None]
