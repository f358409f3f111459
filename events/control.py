"""Asking a live task's announcer to change its readiness: ``skyctl task ready``,
``not-ready`` and ``drain``.

The announcer holds the task's heartbeat, so only it can change what the heartbeat says
(anyone else's write would be overwritten by its next renewal). It answers requests on
``skyflow.control.<namespace>.<name>`` (plain NATS request and reply); NATS permissions
decide who may ask (the namespace's announcers and admins). The reply comes after the
changed heartbeat is stored, so the asker can read the change back at once.

Anyone allowed to publish there can send anything, so the announcer reads requests as
strictly as heartbeats: a size limit before msgpack, every field validated.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgpack
from pydantic import BaseModel, ConfigDict, ValidationError

from events.codec import FutureVersion, NotAnEvent, UnknownEventType, invalid, unpack
from events.task import InstanceId, Reason, Task

__all__ = [
    "MAX_CONTROL_BYTES",
    "ReadinessAction",
    "ReadinessReply",
    "ReadinessRequest",
    "decode_reply",
    "decode_request",
    "encode_control",
]

MAX_CONTROL_BYTES = 4096

_Config = ConfigDict(
    frozen=True, extra="forbid", json_schema_serialization_defaults_required=True, defer_build=True
)


class ReadinessAction(StrEnum):
    """What is asked: take traffic again (and end a drain), stop taking new traffic, or
    drain (stop taking new traffic because the task is leaving; listed as draining)."""

    READY = "ready"
    NOT_READY = "not-ready"
    DRAIN = "drain"


class ReadinessRequest(BaseModel):
    """Set a live task's readiness by hand. ``by`` is who asks, as they say (the server
    authenticated them but does not vouch for this text); it goes into the reason."""

    model_config = _Config

    type: Literal["ReadinessRequest"] = "ReadinessRequest"
    version: Literal[1] = 1
    action: ReadinessAction
    reason: Reason | None = None
    by: Reason | None = None


class ReadinessReply(BaseModel):
    """The announcer's answer: the task as its heartbeat now says (stored before the
    reply), or why nothing changed."""

    model_config = _Config

    type: Literal["ReadinessReply"] = "ReadinessReply"
    version: Literal[1] = 1
    instance: InstanceId | None = None
    task: Task | None = None
    error: Reason | None = None


_MODELS: dict[str, type[ReadinessRequest] | type[ReadinessReply]] = {
    "ReadinessRequest": ReadinessRequest,
    "ReadinessReply": ReadinessReply,
}


def encode_control(message: ReadinessRequest | ReadinessReply) -> bytes:
    packed: bytes = msgpack.packb(message.model_dump(mode="json"))
    return packed


def _decode(data: bytes, expected: str) -> ReadinessRequest | ReadinessReply:
    if len(data) > MAX_CONTROL_BYTES:
        raise NotAnEvent(f"{len(data)} bytes, more than a readiness message may hold")
    raw, kind, version = unpack(data)
    model = _MODELS.get(kind)
    if model is None or kind != expected:
        raise UnknownEventType(kind[:64])
    if version > 1:
        raise FutureVersion(kind, version, 1)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(kind, version, exc) from None


def decode_request(data: bytes) -> ReadinessRequest:
    """A request, or a ``DecodeError`` saying why it cannot be read for certain."""
    message = _decode(data, "ReadinessRequest")
    assert isinstance(message, ReadinessRequest)
    return message


def decode_reply(data: bytes) -> ReadinessReply:
    """A reply, or a ``DecodeError`` saying why it cannot be read for certain."""
    message = _decode(data, "ReadinessReply")
    assert isinstance(message, ReadinessReply)
    return message
