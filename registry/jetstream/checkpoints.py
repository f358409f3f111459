"""Where durable subscriptions keep their place: a JetStream key-value bucket.

A subscription's checkpoint is the last stream sequence it acknowledged. Each save is a
compare-and-set on the entry's revision, so two processes running the same subscription
find out instead of silently interleaving.
"""

from __future__ import annotations

import asyncio
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
    def __init__(self, kv: KeyValue, log: JetStreamLog) -> None:
        self._kv = kv
        self._log = log

    @classmethod
    async def open(cls, log: JetStreamLog) -> CheckpointStore:
        try:
            kv = await log.guarded(
                log.js.key_value(BUCKET), "use durable subscriptions", "$JS.API."
            )
        except nats.js.errors.BucketNotFoundError:
            kv = await log.guarded(
                log.js.create_key_value(
                    KeyValueConfig(
                        bucket=BUCKET,
                        description="SkyFlow registry: last sequence each durable subscriber acked",
                        history=1,
                        storage=StorageType.FILE,
                        replicas=log.stream_replicas,
                    )
                ),
                "create the durable subscriptions bucket (an admin must, once)",
                "$JS.API.",
            )
        return cls(kv, log)

    async def load(self, name: str) -> Checkpoint | None:
        try:
            entry = await self._log.guarded(
                self._kv.get(name), f"read subscription {name!r}", "$JS.API."
            )
        except nats.js.errors.KeyNotFoundError:
            return None
        data = json.loads(entry.value or b"{}")
        return Checkpoint(int(data["seq"]), str(data["filter"]), int(entry.revision or 0))

    async def save(
        self, name: str, seq: int, filter_subject: str, revision: int, *, retry_for: float = 10.0
    ) -> int:
        """Store ``seq``; ``revision`` is the one loaded or last saved (0: none yet).

        Retried while the server is away. A save whose reply was lost (the server died
        after storing it) comes back as a revision mismatch: if the stored value is the
        one being saved, that is success, not a second writer.
        """
        value = json.dumps({"seq": seq, "filter": filter_subject}).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            write = (
                self._kv.create(name, value)
                if revision == 0
                else self._kv.update(name, value, last=revision)
            )
            try:
                return int(await self._log.guarded(write, f"save subscription {name!r}", "$KV."))
            except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BadRequestError):
                stored = await self.load(name)
                if stored is not None and (stored.seq, stored.filter_subject) == (
                    seq,
                    filter_subject,
                ):
                    return stored.revision
                raise CheckpointConflict(name) from None
            except (
                TimeoutError,
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError,
            ):
                if loop.time() >= deadline:
                    raise ServerError(f"saving subscription {name!r} timed out") from None
            await asyncio.sleep(0.2)
