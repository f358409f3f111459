"""``skyctl init``: make sure the registry's stream and subscriptions bucket exist.

Both are plain JetStream streams; on a cluster their ``replicas`` decide how many nodes
keep a copy (JetStream's Raft does the replication, the registry adds nothing). An
existing one is left as it is unless a different replica count is asked for explicitly,
in which case JetStream scales it in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.jetstream.checkpoints import BUCKET, STREAM, CheckpointStore
from registry.jetstream.log import JetStreamLog
from registry.jetstream.protocol import STREAM_NOT_FOUND, ApiError

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
    report = [_report(await log.stream_info(stream), "stream", stream, action, previous)]

    try:
        await log.stream_info(STREAM)
    except ApiError as exc:
        if exc.err_code != STREAM_NOT_FOUND:
            raise
        await CheckpointStore.open(log)
        action, previous = "created", None
    else:
        action, previous = await _maybe_scale(log, STREAM, want, scale)
    report.append(_report(await log.stream_info(STREAM), "bucket", BUCKET, action, previous))
    return report


async def _maybe_scale(
    log: JetStreamLog, stream: str, want: int, scale: bool
) -> tuple[str, int | None]:
    config = dict((await log.stream_info(stream)).get("config") or {})
    have = _replicas(config)
    if not scale or have == want:
        return "exists", None
    config["num_replicas"] = want
    await log.api(f"$JS.API.STREAM.UPDATE.{stream}", config, f"scale {stream} to {want} replicas")
    return "scaled", have


def _replicas(config: dict[str, Any]) -> int:
    value = config.get("num_replicas")
    return value if isinstance(value, int) and value > 0 else 1


def _report(
    info: dict[str, Any], kind: str, name: str, action: str, previous: int | None
) -> Provisioned:
    leader: str | None = None
    peers: tuple[str, ...] = ()
    cluster = info.get("cluster")
    if isinstance(cluster, dict) and cluster.get("name") and cluster.get("leader"):
        leader = str(cluster["leader"])
        peers = tuple(
            f"{peer.get('name')} ({'current' if peer.get('current') else 'lagging'})"
            for peer in cluster.get("replicas") or []
            if isinstance(peer, dict)
        )
    return Provisioned(
        kind=kind,
        name=name,
        action=action,
        replicas=_replicas(dict(info.get("config") or {})),
        previous_replicas=previous,
        leader=leader,
        peers=peers,
    )
