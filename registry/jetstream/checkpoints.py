"""Where durable subscriptions keep their place: a JetStream key-value bucket.

A subscription's checkpoint is the last stream sequence it acknowledged. Each save is a
compare-and-set on the entry's revision, so two processes running the same subscription
find out instead of silently interleaving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from registry.errors import ServerError
from registry.jetstream.connection import JetStreamLog

__all__ = ["BUCKET", "Checkpoint", "CheckpointConflict", "CheckpointStore"]

BUCKET = "SKYFLOW_SUBSCRIPTIONS"


class CheckpointConflict(ServerError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"subscription {name!r} moved on in another process; run one consumer per "
            "subscription name"
        )
        self.name = name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    filter_subject: str
    revision: int


class CheckpointStore:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, log: JetStreamLog) -> CheckpointStore:
        try:
            kv = await log.js.key_value(BUCKET)
        except nats.js.errors.BucketNotFoundError:
            kv = await log.js.create_key_value(
                KeyValueConfig(
                    bucket=BUCKET,
                    description="SkyFlow registry: last sequence each durable subscriber acked",
                    history=1,
                    storage=StorageType.FILE,
                    replicas=log.stream_replicas,
                )
            )
        return cls(kv)

    async def load(self, name: str) -> Checkpoint | None:
        try:
            entry = await self._kv.get(name)
        except nats.js.errors.KeyNotFoundError:
            return None
        data = json.loads(entry.value or b"{}")
        return Checkpoint(int(data["seq"]), str(data["filter"]), int(entry.revision or 0))

    async def save(self, name: str, seq: int, filter_subject: str, revision: int) -> int:
        """Store ``seq``; ``revision`` is the one loaded or last saved (0: none yet)."""
        value = json.dumps({"seq": seq, "filter": filter_subject}).encode()
        try:
            if revision == 0:
                return int(await self._kv.create(name, value))
            return int(await self._kv.update(name, value, last=revision))
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BadRequestError):
            raise CheckpointConflict(name) from None
