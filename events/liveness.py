"""Where live tasks are kept: their subjects, and the stream that forgets the dead.

A task (SkyFlow's pod: an address with labels, in a cluster) is live while its announcer
keeps renewing its heartbeat. Each heartbeat is stored with a per-message TTL in a stream
of its own, one message per subject, so the server itself removes a task whose
heartbeats stop and tells every reader with a subject delete marker. The audit stream
never gets TTLs (``allow_msg_ttl`` can never be turned off once on).

A task is stored once per label, on a subject that carries that label::

    skyflow.task.<namespace>.<name>.<label key>.<label value>
    skyflow.task.<namespace>.<name>                      (a task with no labels)

so a service's endpoints are read with one subject filter on the first label of its
selector (``skyflow.task.shop.*.app.web``), on the server, and the cost of that read
grows with the tasks carrying that label, not with the tasks of other services. The
price is one message per label per heartbeat, which is why a task may carry at most
``MAX_TASK_LABELS`` labels.

Announcers never write into that stream. Each namespace has an intake stream of its own
(``SKYFLOW_INTAKE_<namespace>``, on ``skyflow.task.<namespace>.>``) that refuses roll-ups,
purges and deletes and holds a bounded number of subjects and bytes; the liveness stream
sources every intake and has no subjects of its own. The server lets anyone allowed to
write a stream with subject delete markers send ``Nats-Rollup: all`` (markers turn
roll-ups on for good), which would empty every namespace's tasks at once; an intake has no
markers, so it can refuse roll-ups, and a team that fills its intake fills only its own.

Plain data, no pydantic: the NATS adapter and the subject parsing need only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.stream import consumer_limits

__all__ = [
    "CONTROL_PREFIX",
    "INTAKE_MAX_BYTES",
    "INTAKE_MAX_SUBJECTS",
    "INTAKE_PREFIX",
    "MARKER_TTL_S",
    "MAX_TASK_BYTES",
    "MAX_TASK_LABELS",
    "MAX_TASK_PORTS",
    "MAX_TTL_S",
    "MIN_TTL_S",
    "TASKS_STREAM",
    "TASK_PREFIX",
    "TASK_SUBJECTS",
    "IntakeSpec",
    "TasksSpec",
    "control_subject",
    "intake_stream",
    "label_token",
    "namespace_of",
    "parse_task_subject",
    "selector_filter",
    "task_filter",
    "task_subjects",
    "token_text",
]

TASKS_STREAM = "SKYFLOW_TASKS"
TASK_PREFIX = "skyflow.task"
TASK_SUBJECTS = f"{TASK_PREFIX}.>"
# Where a live task's announcer answers readiness requests (``skyctl task drain``): plain
# NATS request and reply, no stream. Permissions give a namespace's announcers, and
# admins, its subjects only.
CONTROL_PREFIX = "skyflow.control"

# ``Nats-TTL`` takes whole seconds only ("500ms" is refused by the server).
MIN_TTL_S = 1
# The longest a heartbeat may live. The stream's ``max_age`` is the same, so even a
# message written without a TTL (or with "never") is gone within the hour.
MAX_TTL_S = 3600
# How long a subject delete marker stays: long enough to reach every connected reader;
# one that was away re-reads the current state instead of relying on markers.
MARKER_TTL_S = 10
# Each label is one more message per heartbeat (see above).
MAX_TASK_LABELS = 16
# A task's named ports (``--port http=8080``).
MAX_TASK_PORTS = 16
# The largest heartbeat body; the stream refuses anything larger than this plus headers.
MAX_TASK_BYTES = 4096
_HEADER_ROOM = 1024
# Each namespace's intake stream: its name, and what one namespace may hold there (live
# task subjects, one per label per task, and their bytes). A namespace at its bound can
# still renew what it holds; new subjects are refused, in that namespace only.
INTAKE_PREFIX = "SKYFLOW_INTAKE_"
INTAKE_MAX_SUBJECTS = 200_000
INTAKE_MAX_BYTES = 512 * 1024 * 1024

_EMPTY = "%"


def label_token(text: str) -> str:
    """A label key or value as one subject token: ``.`` (which would split the subject)
    is written ``%2E``. Label syntax has no ``%``, so the encoding cannot collide; the
    empty value is ``%``."""
    if not text:
        return _EMPTY
    return text.replace("%", "%25").replace(".", "%2E")


def token_text(token: str) -> str:
    """The label key or value a token stands for (``label_token`` undone)."""
    if token == _EMPTY:
        return ""
    return token.replace("%2E", ".").replace("%25", "%")


def task_subjects(namespace: str, name: str, labels: dict[str, str]) -> list[str]:
    """Every subject a task's heartbeat is stored on: one per label, in key order."""
    base = f"{TASK_PREFIX}.{namespace}.{name}"
    if not labels:
        return [base]
    return [f"{base}.{label_token(k)}.{label_token(v)}" for k, v in sorted(labels.items())]


def task_filter(namespace: str | None = None, name: str | None = None) -> list[str]:
    """Subject filters for one task, one namespace, or (both None) every task."""
    if namespace is None:
        return [TASK_SUBJECTS]
    if name is None:
        return [f"{TASK_PREFIX}.{namespace}.>"]
    return [f"{TASK_PREFIX}.{namespace}.{name}", f"{TASK_PREFIX}.{namespace}.{name}.>"]


def selector_filter(namespace: str, key: str, value: str) -> str:
    """The tasks of ``namespace`` carrying the label ``key=value``."""
    return f"{TASK_PREFIX}.{namespace}.*.{label_token(key)}.{label_token(value)}"


def control_subject(namespace: str, name: str) -> str:
    """Where the announcer of ``namespace/name`` answers readiness requests."""
    return f"{CONTROL_PREFIX}.{namespace}.{name}"


def intake_stream(namespace: str) -> str:
    """The name of ``namespace``'s intake stream (namespaces are valid stream-name text)."""
    return f"{INTAKE_PREFIX}{namespace}"


def namespace_of(subject: str) -> str:
    """The namespace a task subject names; ValueError if it is not a task subject."""
    return parse_task_subject(subject)[0]


def parse_task_subject(subject: str) -> tuple[str, str, tuple[str, str] | None]:
    """``(namespace, name, (key, value) or None)`` of a task subject; ValueError otherwise."""
    tokens = subject.split(".")
    if tokens[:2] == TASK_PREFIX.split(".") and all(tokens):
        if len(tokens) == 4:
            return tokens[2], tokens[3], None
        if len(tokens) == 6:
            return tokens[2], tokens[3], (token_text(tokens[4]), token_text(tokens[5]))
    raise ValueError(
        f"{subject[:200]!r} is not a task subject "
        f"({TASK_PREFIX}.<namespace>.<name>[.<key>.<value>])"
    )


@dataclass(frozen=True)
class TasksSpec:
    """The liveness stream, as the registry creates it and checks it on every connect.

    File storage, so live tasks survive a server restart instead of vanishing all at
    once. On one server, asynchronous persistence, so heartbeats are not fsynced one by
    one (measured on 2 cores: about 4,200 heartbeats/s with every write fsynced, 87,000/s
    without); a heartbeat lost in a crash is renewed within a third of its TTL. JetStream
    refuses asynchronous persistence on replicated streams, and needs none there: their
    writes reach the disk in batches (40,000 heartbeats/s measured on three nodes).
    """

    name: str = TASKS_STREAM
    replicas: int = 1
    marker_ttl_s: int = MARKER_TTL_S
    max_age_s: int = MAX_TTL_S

    @property
    def max_msg_size(self) -> int:
        return MAX_TASK_BYTES + _HEADER_ROOM

    def config(self, intakes: tuple[str, ...] = ()) -> dict[str, Any]:
        """The stream configuration, as JetStream's JSON API takes it: no subjects of its
        own (nobody can publish into it, so nobody can roll it up), fed by ``intakes``."""
        return {
            "name": self.name,
            "description": "SkyFlow service registry: live tasks (each heartbeat expires)",
            "subjects": [],
            "sources": [{"name": name} for name in intakes],
            "retention": "limits",
            "storage": "file",
            **({"persist_mode": "async"} if self.replicas == 1 else {}),
            "discard": "old",
            "num_replicas": self.replicas,
            "max_msgs_per_subject": 1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": self.max_age_s * 1_000_000_000,
            "max_msg_size": self.max_msg_size,
            "allow_msg_ttl": True,
            "subject_delete_marker_ttl": self.marker_ttl_s * 1_000_000_000,
            "allow_direct": True,
            "deny_delete": True,
            "duplicate_window": 60_000_000_000,
            "consumer_limits": consumer_limits(),
        }


@dataclass(frozen=True)
class IntakeSpec:
    """One namespace's intake: where its announcers write, and what bounds them.

    No roll-ups, purges or deletes (an intake has no subject delete markers, so the server
    lets it refuse them); one message per subject with per-message TTLs, as in the
    liveness stream that sources it; at most ``max_subjects`` subjects and ``max_bytes``
    bytes, new ones refused beyond that (``discard: new``), renewals still taken.
    """

    namespace: str
    replicas: int = 1
    max_subjects: int = INTAKE_MAX_SUBJECTS
    max_bytes: int = INTAKE_MAX_BYTES

    @property
    def name(self) -> str:
        return intake_stream(self.namespace)

    @property
    def subject(self) -> str:
        return f"{TASK_PREFIX}.{self.namespace}.>"

    def config(self) -> dict[str, Any]:
        """The stream configuration, as JetStream's JSON API takes it."""
        return {
            "name": self.name,
            "description": f"SkyFlow service registry: heartbeats of namespace {self.namespace}",
            "subjects": [self.subject],
            "retention": "limits",
            "storage": "file",
            **({"persist_mode": "async"} if self.replicas == 1 else {}),
            "discard": "new",
            "num_replicas": self.replicas,
            "max_msgs_per_subject": 1,
            "max_msgs": self.max_subjects,
            "max_bytes": self.max_bytes,
            "max_age": MAX_TTL_S * 1_000_000_000,
            "max_msg_size": MAX_TASK_BYTES + _HEADER_ROOM,
            "allow_msg_ttl": True,
            "allow_rollup_hdrs": False,
            "allow_direct": False,
            "deny_delete": True,
            "deny_purge": True,
            "duplicate_window": 60_000_000_000,
        }
