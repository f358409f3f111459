"""The membership history: who was live behind the services, and when. The record of
presence, as the audit log is the record of intent.

A recorder (``skyctl record``) reads the liveness stream and writes each *transition* of a
task once, never a heartbeat: it joined, its readiness changed, it left. They go into a
stream of their own (``SKYFLOW_MEMBERSHIP``, kept ``retention`` long), one subject per task::

    skyflow.member.<namespace>.<name>       TaskJoined, TaskReadinessChanged, TaskLeft
    skyflow.member._recorder                RecordingResumed (no namespace starts with _)

so a task's last message is its state, the state of every task at a moment T is each
subject's last message at or before T (one multi-last read), and a task's history is its
subject. Every transition names the liveness-stream message it was read from
(``source_seq``) and when the server stored it (``at``).

Two recorders write the same transition once: each writes on top of the task subject's
last sequence it knows (``Nats-Expected-Last-Subject-Sequence``); the one that loses
reads what the other wrote and moves on. A recorder that was down catches up from what
the server still holds, the current state: what it finds changed it records with
``exact: false`` (it happened between ``after`` and ``at``), and it says, in a
``RecordingResumed``, that whatever began and ended while no recorder ran left no trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.codec import FutureVersion, NotAnEvent, UnknownEventType, invalid, unpack
from events.envelope import Timestamp
from events.task import InstanceId, Reason, Task

__all__ = [
    "DEFAULT_RETENTION_S",
    "MEMBERSHIP_PREFIX",
    "MEMBERSHIP_STREAM",
    "RECORDER_SUBJECT",
    "MembershipEvent",
    "MembershipSpec",
    "RecordingResumed",
    "TaskJoined",
    "TaskLeft",
    "TaskReadinessChanged",
    "Transition",
    "decode_membership",
    "encode_membership",
    "member_subject",
    "parse_member_subject",
]

MEMBERSHIP_STREAM = "SKYFLOW_MEMBERSHIP"
MEMBERSHIP_PREFIX = "skyflow.member"
RECORDER_SUBJECT = f"{MEMBERSHIP_PREFIX}._recorder"
DEFAULT_RETENTION_S = 30 * 86400
MAX_MEMBERSHIP_BYTES = 8192

_Config = ConfigDict(
    frozen=True, extra="forbid", json_schema_serialization_defaults_required=True, defer_build=True
)
Seq = Annotated[int, Field(ge=0, strict=True)]


def member_subject(namespace: str, name: str) -> str:
    """A task's membership subject."""
    return f"{MEMBERSHIP_PREFIX}.{namespace}.{name}"


def parse_member_subject(subject: str) -> tuple[str, str]:
    """``(namespace, name)`` of a task's membership subject; ValueError otherwise."""
    tokens = subject.split(".")
    prefix = tokens[:2] == MEMBERSHIP_PREFIX.split(".")
    if len(tokens) == 4 and prefix and all(tokens[2:]) and not tokens[2].startswith("_"):
        return tokens[2], tokens[3]
    raise ValueError(f"{subject[:200]!r} is not a task's membership subject")


class _Transition(BaseModel):
    model_config = _Config

    at: Timestamp  # when the server stored what the transition was read from
    source_seq: Seq  # that message's sequence in the liveness stream (0: none, inferred)
    instance: InstanceId  # the run of the announcer it concerns
    # False: found by a recorder catching up; it happened between ``after`` and ``at``.
    exact: bool = True
    after: Timestamp | None = None


class TaskJoined(_Transition):
    """A task became live (a new run of an announcer under its name), as announced."""

    type: Literal["TaskJoined"] = "TaskJoined"
    version: Literal[1] = 1
    since: Timestamp  # when its announcer began
    task: Task


class TaskReadinessChanged(_Transition):
    """A live task's readiness changed (a check, an operator, a drain); the task after."""

    type: Literal["TaskReadinessChanged"] = "TaskReadinessChanged"
    version: Literal[1] = 1
    task: Task


class TaskLeft(_Transition):
    """A task stopped being live. ``how``: ``withdrawn`` (its announcer said so, with
    ``reason``), ``expired`` (its heartbeats stopped and the server removed it: a killed
    announcer, a lost host), ``replaced`` (another run of an announcer took its name),
    ``unreadable`` (its subject now holds what no reader can take as a heartbeat) or
    ``unknown`` (a recorder catching up found it gone, not how)."""

    type: Literal["TaskLeft"] = "TaskLeft"
    version: Literal[1] = 1
    task: Task  # as it was when it left
    how: Literal["withdrawn", "expired", "replaced", "unreadable", "unknown"]
    reason: Reason | None = None


class RecordingResumed(BaseModel):
    """A recorder started reading the liveness stream: transitions since ``after`` (the
    last one recorded before it) are known only as far as the server still held them;
    ``inexact`` of them were found by catching up."""

    model_config = _Config

    type: Literal["RecordingResumed"] = "RecordingResumed"
    version: Literal[1] = 1
    at: Timestamp
    after: Timestamp | None
    recorder: Reason
    inexact: Annotated[int, Field(ge=0, strict=True)] = 0


Transition = TaskJoined | TaskReadinessChanged | TaskLeft
MembershipEvent = Transition | RecordingResumed

_MODELS: dict[str, type[BaseModel]] = {
    "TaskJoined": TaskJoined,
    "TaskReadinessChanged": TaskReadinessChanged,
    "TaskLeft": TaskLeft,
    "RecordingResumed": RecordingResumed,
}


def encode_membership(event: MembershipEvent) -> bytes:
    packed: bytes = msgpack.packb(event.model_dump(mode="json"))
    return packed


def decode_membership(data: bytes) -> MembershipEvent:
    """The event, or a ``DecodeError`` saying why it cannot be read for certain (the
    stream is written by recorders, but nothing read from a server is trusted)."""
    if len(data) > MAX_MEMBERSHIP_BYTES:
        raise NotAnEvent(f"{len(data)} bytes, more than a membership event may hold")
    raw, kind, version = unpack(data)
    model = _MODELS.get(kind)
    if model is None:
        raise UnknownEventType(kind[:64])
    if version > 1:
        raise FutureVersion(kind, version, 1)
    try:
        event: Any = model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(kind, version, exc) from None
    return event  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MembershipSpec:
    """The membership stream as the registry creates it: file storage, every transition
    kept ``retention_s`` (30 days unless ``skyctl init --membership-retention``), direct
    gets for time travel (a multi-last read as of a moment), no purge or delete."""

    name: str = MEMBERSHIP_STREAM
    replicas: int = 1
    retention_s: int = DEFAULT_RETENTION_S

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subjects": [f"{MEMBERSHIP_PREFIX}.>"],
            "retention": "limits",
            "storage": "file",
            "num_replicas": self.replicas,
            "max_age": self.retention_s * 1_000_000_000,
            "max_msg_size": MAX_MEMBERSHIP_BYTES + 1024,
            "discard": "old",
            "allow_direct": True,
            "deny_delete": True,
            "deny_purge": True,
            "duplicate_window": 120 * 1_000_000_000,
        }
