"""The stream that holds the log, and the settings it must keep to be trusted.

Kept as plain data so the contract does not depend on a client library: the
registry's NATS adapter turns it into a stream configuration and compares a live
stream against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.subjects import ALL_SUBJECTS

__all__ = [
    "CONSUMER_IDLE_LIMIT_S",
    "MAX_EVENT_BYTES",
    "STREAM_NAME",
    "StreamSpec",
    "consumer_limits",
]

STREAM_NAME = "SKYFLOW_SERVICES"
# The largest event the registry writes (its msgpack body). The stream refuses messages
# larger than this plus room for headers, so no writer can fill the disk a megabyte at a
# time; a Kubernetes Service of this size would already be unusual.
MAX_EVENT_BYTES = 64 * 1024
# What the stream's ``max_msg_size`` allows beyond the body: the write headers and a
# signature.
HEADER_ROOM = 4 * 1024
# The longest a consumer on a registry stream may sit without interest before the server
# removes it: every reader's consumer is ephemeral, so one abandoned (or made by someone
# who asks for ten years) is gone within this, whoever made it.
CONSUMER_IDLE_LIMIT_S = 300


def consumer_limits() -> dict[str, Any]:
    """The server-enforced bounds on every consumer of a registry stream (its JSON)."""
    return {"inactive_threshold": CONSUMER_IDLE_LIMIT_S * 1_000_000_000}


@dataclass(frozen=True)
class StreamSpec:
    """What the log stream must look like.

    ``required`` are settings that, if different on a live stream, could lose or
    rewrite history: the registry refuses such a stream instead of writing to it.
    """

    name: str = STREAM_NAME
    # Services, the addresses they hold and the address ranges: what must change together
    # is written as one atomic batch, and a batch cannot span streams.
    subjects: tuple[str, ...] = ALL_SUBJECTS
    replicas: int = 1
    # Long enough to cover a client's retries after a lost ack or a leader change.
    duplicate_window_s: float = 120.0

    @property
    def max_msg_size(self) -> int:
        return MAX_EVENT_BYTES + HEADER_ROOM

    @property
    def required(self) -> dict[str, Any]:
        """Settings that must have exactly these values (as the server's JSON has them)."""
        return {
            "storage": "file",
            "retention": "limits",
            "deny_delete": True,
            "deny_purge": True,
            "allow_rollup_hdrs": False,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msgs_per_subject": -1,
            "sealed": False,
            "no_ack": False,
            "allow_msg_ttl": False,
            "allow_msg_schedules": False,
            "allow_msg_counter": False,
            "allow_atomic": True,
        }
