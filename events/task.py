"""A task, and the two messages about it in the liveness stream.

A ``TaskHeartbeat`` says "this task is live" and carries the whole task, so the last
message on a task's subject is all a reader needs; it is renewed, byte for byte the same,
until the announcer stops. A ``TaskWithdrawn`` says it left on purpose (Ctrl-C, SIGTERM,
the end of ``registry.discovery.announce``); a task that just stops renewing is removed by the
server, which leaves an empty subject delete marker.

Anyone allowed to announce in a namespace can write anything on its subjects, so reading
is strict: a size limit before msgpack, every field validated, the address an IP, labels
as service labels, at most ``MAX_TASK_LABELS`` of them. What fails is a ``DecodeError``
for the reader to skip and report.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgpack
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from events.codec import FutureVersion, NotAnEvent, UnknownEventType, invalid, unpack
from events.envelope import Timestamp
from events.liveness import MAX_TASK_BYTES, MAX_TASK_LABELS, MAX_TASK_PORTS
from events.names import LabelKey, LabelValue, PortName, ResourceName

__all__ = [
    "MAX_REASON",
    "Task",
    "TaskHeartbeat",
    "TaskMessage",
    "TaskWithdrawn",
    "as_reason",
    "decode_task_message",
    "encode_task_message",
]

_Config = ConfigDict(
    frozen=True, extra="forbid", json_schema_serialization_defaults_required=True, defer_build=True
)

InstanceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# Why a task is not ready, or why it left: shown in terminals, so one line of printable
# text (no control characters a writer could use to rewrite a reader's screen).
MAX_REASON = 200
Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON, pattern=r"^[^\x00-\x1f\x7f]+$")]


def as_reason(text: str) -> str:
    """Any text as a ``Reason`` carries it: what is not printable becomes a space, and
    past ``MAX_REASON`` characters it is cut, ending ``...``."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return clean if len(clean) <= MAX_REASON else clean[: MAX_REASON - 3] + "..."


PortNumber = Annotated[int, Field(ge=1, le=65535, strict=True)]


class Task(BaseModel):
    """One running job: where it listens, what it is (labels), and whether it takes traffic.

    ``ports`` are the task's named ports (``http=8080``): a service port whose
    ``targetPort`` is a name sends its traffic to the task's port of that name, so two
    tasks on one host can serve one service. A numeric ``targetPort`` is used as it is.

    A task that is not ``ready`` gets no new traffic; ``draining`` says it was drained
    on purpose (it is leaving: Kubernetes' terminating endpoint, Consul's maintenance),
    and ``reason`` says why it is not ready (a failing check, an operator's words).
    """

    model_config = _Config

    namespace: ResourceName
    name: ResourceName
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_TASK_LABELS)
    address: str = Field(max_length=64)
    cluster: ResourceName | None = None
    ready: bool = True
    ports: dict[PortName, PortNumber] = Field(default_factory=dict, max_length=MAX_TASK_PORTS)
    draining: bool = False
    reason: Reason | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)``: a task's identity."""
        return (self.namespace, self.name)

    @model_validator(mode="after")
    def _drained_is_not_ready(self) -> Task:
        if self.draining and self.ready:
            raise ValueError("a draining task is not ready")
        return self

    @field_validator("address")
    @classmethod
    def _an_ip(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))  # one spelling per address
        except ValueError:
            raise ValueError(f"{value[:64]!r} is not an IPv4 or IPv6 address") from None

    @field_validator("labels", "ports")
    @classmethod
    def _sorted(cls, value: dict[str, str]) -> dict[str, str]:
        return dict(sorted(value.items())) if list(value) != sorted(value) else value


class TaskHeartbeat(BaseModel):
    """The task is live; it carries the task in full. ``instance`` tells one run of an
    announcer from the next under the same name; ``since`` is when that run began.

    Version 2 added ``task.ports``, ``task.draining`` and ``task.reason``: a version-1
    heartbeat is read as a task without ports, not draining, with no reason."""

    model_config = _Config

    type: Literal["TaskHeartbeat"] = "TaskHeartbeat"
    version: Literal[2] = 2
    instance: InstanceId
    since: Timestamp
    task: Task


class TaskWithdrawn(BaseModel):
    """The task left on purpose; readers drop it at once. ``reason`` says why (a
    supervised program that exited, and its status), for the membership history.

    Version 2 added ``reason``: a version-1 withdrawal gives none."""

    model_config = _Config

    type: Literal["TaskWithdrawn"] = "TaskWithdrawn"
    version: Literal[2] = 2
    instance: InstanceId
    namespace: ResourceName
    name: ResourceName
    reason: Reason | None = None


TaskMessage = TaskHeartbeat | TaskWithdrawn

_MODELS: dict[str, type[TaskHeartbeat] | type[TaskWithdrawn]] = {
    "TaskHeartbeat": TaskHeartbeat,
    "TaskWithdrawn": TaskWithdrawn,
}


def encode_task_message(message: TaskMessage) -> bytes:
    packed: bytes = msgpack.packb(message.model_dump(mode="json"))
    return packed


def decode_task_message(data: bytes) -> TaskMessage:
    """The message, or a ``DecodeError`` saying why it cannot be read for certain."""
    if len(data) > MAX_TASK_BYTES:
        raise NotAnEvent(f"{len(data)} bytes, more than a task message may hold ({MAX_TASK_BYTES})")
    raw, kind, version = unpack(data)
    model = _MODELS.get(kind)
    if model is None:
        raise UnknownEventType(kind[:64])
    current = model.model_fields["version"].default
    if version > current:
        raise FutureVersion(kind, version, current)
    if version < current:
        # Every later version only added fields with defaults: an older map reads as is.
        raw = {**raw, "version": current}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(kind, version, exc) from None
