"""``skyctl init``: make sure the registry's stream and subscriptions bucket exist.

Both are plain JetStream streams; on a cluster their ``replicas`` decide how many nodes
keep a copy (JetStream's Raft does the replication, the registry adds nothing). An
existing one is left as it is unless a different replica count is asked for explicitly,
in which case JetStream scales it in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors
from nats.js.api import StreamInfo

from registry.jetstream.checkpoints import BUCKET, CheckpointStore
from registry.jetstream.connection import JetStreamLog, _translate_api_error

__all__ = ["Provisioned", "provision"]


@dataclass(frozen=True)
class Provisioned:
    kind: str  # "stream" or "bucket"
    name: str
    action: str  # "created", "exists" or "scaled"
    replicas: int
    previous_replicas: int | None = None  # when scaled
    leader: str | None = None  # on a cluster
    peers: tuple[str, ...] = ()  # the other replicas, "<name> (current|lagging)"

    def __str__(self) -> str:
        noun = "replica" if self.replicas == 1 else "replicas"
        text = f"{self.kind} {self.name} {self.action}"
        if self.action == "scaled":
            text += f" from {self.previous_replicas} to {self.replicas} {noun}"
        else:
            text += f" ({self.replicas} {noun})"
        if self.leader:
            text += f", leader {self.leader}"
            if self.peers:
                text += f", followers {', '.join(self.peers)}"
        return text


async def provision(log: JetStreamLog, *, scale: bool) -> list[Provisioned]:
    """Report the event stream and the subscriptions bucket, creating the bucket if it is
    missing with as many replicas as the stream has. With ``scale``, first bring both to
    ``log.spec.replicas``. ``log`` was opened with that spec, so the stream exists already
    (``log.created_stream`` says whether this process made it)."""
    want = log.spec.replicas
    stream = log.spec.name
    if log.created_stream:
        action, previous = "created", None
    else:
        action, previous = await _maybe_scale(log, stream, want, scale)
        if action == "scaled":
            log.stream_replicas = want
    report = [_report(await _info(log, stream), "stream", stream, action, previous)]

    kv_stream = f"KV_{BUCKET}"
    try:
        await log.js.stream_info(kv_stream)
    except nats.js.errors.NotFoundError:
        await log._api(CheckpointStore.open(log), f"create bucket {BUCKET}")
        action, previous = "created", None
    except nats.js.errors.APIError as exc:
        raise _translate_api_error(exc, f"read bucket {BUCKET}") from None
    else:
        action, previous = await _maybe_scale(log, kv_stream, want, scale)
    report.append(_report(await _info(log, kv_stream), "bucket", BUCKET, action, previous))
    return report


async def _maybe_scale(
    log: JetStreamLog, stream: str, want: int, scale: bool
) -> tuple[str, int | None]:
    info = await _info(log, stream)
    have = int(info.config.num_replicas or 1)
    if not scale or have == want:
        return "exists", None
    config = info.config
    config.num_replicas = want
    await log._api(log.js.update_stream(config), f"scale {stream} to {want} replicas")
    return "scaled", have


async def _info(log: JetStreamLog, stream: str) -> StreamInfo:
    info: StreamInfo = await log._api(log.js.stream_info(stream), f"read stream {stream}")
    return info


def _report(
    info: StreamInfo, kind: str, name: str, action: str, previous: int | None
) -> Provisioned:
    leader: str | None = None
    peers: tuple[str, ...] = ()
    if info.cluster is not None and info.cluster.name and info.cluster.leader:
        leader = info.cluster.leader
        peers = tuple(
            f"{peer.name} ({'current' if peer.current else 'lagging'})"
            for peer in info.cluster.replicas or []
        )
    return Provisioned(
        kind=kind,
        name=name,
        action=action,
        replicas=int(info.config.num_replicas or 1),
        previous_replicas=previous,
        leader=leader,
        peers=peers,
    )
