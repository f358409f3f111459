"""``skyctl init``: make sure the registry's streams and subscriptions bucket exist.

Both are plain JetStream streams; on a cluster their ``replicas`` decide how many nodes
keep a copy (JetStream's Raft does the replication, the registry adds nothing). An
existing one is scaled in place when a different replica count is asked for explicitly,
and tightened where an older version of the registry left it looser than it is now made
(an unbounded event size; a bucket that allowed roll-ups and purges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.liveness import TASKS_STREAM
from events.stream import consumer_limits
from registry.jetstream.checkpoints import BUCKET, BUCKET_SAFETY, STREAM, CheckpointStore
from registry.jetstream.log import JetStreamLog
from registry.jetstream.protocol import STREAM_NOT_FOUND, ApiError
from registry.jetstream.session import SETTLE_S

__all__ = ["Provisioned", "provision"]


@dataclass(frozen=True)
class Provisioned:
    kind: str  # "stream" or "bucket"
    name: str
    action: str  # "created", "exists", "scaled" or "recreated" (with other replicas)
    replicas: int
    previous_replicas: int | None = None  # when scaled
    leader: str | None = None  # on a cluster
    peers: tuple[str, ...] = ()  # the other replicas, "<name> (current|lagging)"
    tightened: tuple[str, ...] = ()  # settings changed to what the registry now asks

    def __str__(self) -> str:
        noun = "replica" if self.replicas == 1 else "replicas"
        text = f"{self.kind} {self.name} {self.action}"
        if self.action in ("scaled", "recreated"):
            text += f" from {self.previous_replicas} to {self.replicas} {noun}"
        else:
            text += f" ({self.replicas} {noun})"
        if self.leader:
            text += f", leader {self.leader}"
            if self.peers:
                text += f", followers {', '.join(self.peers)}"
        if self.tightened:
            text += f"; set {', '.join(self.tightened)}"
        return text


async def provision(
    log: JetStreamLog,
    *,
    scale: bool,
    namespaces: tuple[str, ...] = (),
    membership_retention_s: int | None = None,
) -> list[Provisioned]:
    """Report the event stream and the subscriptions bucket, creating the bucket if it is
    missing with as many replicas as the stream has. With ``scale``, first bring both to
    ``log.spec.replicas``. ``log`` was opened with that spec, so the stream exists already
    (``log.created_stream`` says whether this process made it)."""
    want = log.spec.replicas
    stream = log.spec.name
    tightened: tuple[str, ...]
    if log.created_stream:
        action, previous, tightened = "created", None, ()
    elif log.site is not None:
        # A site's mirror of the hub's log: the hub's init upgrades the log itself.
        action, previous, tightened = await _settle(log, stream, want, scale, {})
    else:
        upgrade = {
            "max_msg_size": log.spec.max_msg_size,
            "allow_atomic": True,
            "subjects": list(log.spec.subjects),
            "consumer_limits": consumer_limits(),
        }
        action, previous, tightened = await _settle(log, stream, want, scale, upgrade)
        if action == "scaled":
            log.stream_replicas = want
    report = [
        _report(
            await log.session.stream_info(stream, retry_for=SETTLE_S),
            "stream",
            stream,
            action,
            previous,
            tightened,
        )
    ]

    try:
        await log.session.stream_info(STREAM, retry_for=SETTLE_S)
    except ApiError as exc:
        if exc.err_code != STREAM_NOT_FOUND:
            raise
        await CheckpointStore.open(log.session, log.stream_replicas)
        action, previous, tightened = "created", None, ()
    else:
        action, previous, tightened = await _settle(log, STREAM, want, scale, BUCKET_SAFETY)
    info = await log.session.stream_info(STREAM, retry_for=SETTLE_S)
    report.append(_report(info, "bucket", BUCKET, action, previous, tightened))
    report.append(await _provision_tasks(log, want, scale))
    for namespace in namespaces:
        report.append(await _provision_intake(log, namespace, want, scale))
    report.append(await _provision_membership(log, want, scale, membership_retention_s))
    return report


async def _provision_membership(
    log: JetStreamLog, want: int, scale: bool, retention_s: int | None
) -> Provisioned:
    """The membership history, made with the retention asked for (30 days unless told),
    or scaled, and its retention changed when another is asked for."""
    from events.membership import DEFAULT_RETENTION_S, MEMBERSHIP_STREAM, MembershipSpec

    keep = retention_s if retention_s is not None else DEFAULT_RETENTION_S
    tightened: tuple[str, ...] = ()
    try:
        await log.session.stream_info(MEMBERSHIP_STREAM, retry_for=SETTLE_S)
    except ApiError as exc:
        if exc.err_code != STREAM_NOT_FOUND:
            raise
        spec = MembershipSpec(replicas=log.stream_replicas, retention_s=keep)
        await log.session.ensure_stream(MEMBERSHIP_STREAM, spec.config(), "create membership")
        action, previous = "created", None
    else:
        wanted = {} if retention_s is None else {"max_age": retention_s * 1_000_000_000}
        action, previous, tightened = await _settle(log, MEMBERSHIP_STREAM, want, scale, wanted)
    info = await log.session.stream_info(MEMBERSHIP_STREAM, retry_for=SETTLE_S)
    return _report(info, "stream", MEMBERSHIP_STREAM, action, previous, tightened)


async def _provision_intake(
    log: JetStreamLog, namespace: str, want: int, scale: bool
) -> Provisioned:
    """A namespace's intake stream, made (and sourced into the liveness stream) or
    scaled with the rest."""
    from events.liveness import intake_stream

    name = intake_stream(namespace)
    liveness = await log.liveness()
    if await liveness.ensure_intake(namespace):
        action, previous = "created", None
    else:
        action, previous, _ = await _settle(log, name, want, scale, {})
    info = await log.session.stream_info(name, retry_for=SETTLE_S)
    return _report(info, "stream", name, action, previous, ())


async def _provision_tasks(log: JetStreamLog, want: int, scale: bool) -> Provisioned:
    """The liveness stream, created like the bucket, or scaled with the rest (and with it
    the namespaces' intakes)."""
    from events.liveness import TasksSpec
    from registry.jetstream.liveness import JetStreamLiveness

    try:
        info = await log.session.stream_info(TASKS_STREAM, retry_for=SETTLE_S)
    except ApiError as exc:
        if exc.err_code != STREAM_NOT_FOUND:
            raise
        await JetStreamLiveness.open(log.session, TasksSpec(replicas=log.stream_replicas))
        action, previous = "created", None
    else:
        config = dict(info.get("config") or {})
        legacy = bool([s for s in config.get("subjects") or [] if s != TASKS_STREAM])
        remade = await _scale_intakes(log, want) if scale else []
        if legacy or (scale and want > 1 and config.get("persist_mode") == "async"):
            # JetStream can neither replicate an asynchronously persisted stream nor change
            # its persistence, nor take a stream's subjects away while others' intakes
            # would overlap them: it is made again. It holds only heartbeats, each renewed
            # within a third of its TTL, so live tasks are back within that time.
            api = f"$JS.API.STREAM.DELETE.{TASKS_STREAM}"
            await log.session.api(api, None, f"replace stream {TASKS_STREAM}")
            await JetStreamLiveness.open(log.session, TasksSpec(replicas=log.stream_replicas))
            action, previous = "recreated", _replicas(config)
        else:
            for intake in remade:
                await _source_again(log, intake)
            limits = {"consumer_limits": consumer_limits()}
            action, previous, _ = await _settle(log, TASKS_STREAM, want, scale, limits)
    info = await log.session.stream_info(TASKS_STREAM, retry_for=SETTLE_S)
    return _report(info, "stream", TASKS_STREAM, action, previous, ())


async def _stream_names(log: JetStreamLog, prefix: str) -> list[str]:
    answer = await log.session.api("$JS.API.STREAM.NAMES", {}, "list streams")
    names = answer.get("streams") or []
    return sorted(n for n in names if isinstance(n, str) and n.startswith(prefix))


async def _scale_intakes(log: JetStreamLog, want: int) -> list[str]:
    """Bring every namespace's intake to ``want`` replicas; the ones made again (an
    asynchronously persisted stream cannot be replicated), which the liveness stream must
    then read from their start."""
    from events.liveness import INTAKE_PREFIX, IntakeSpec

    remade = []
    for name in await _stream_names(log, INTAKE_PREFIX):
        config = dict((await log.session.stream_info(name, retry_for=SETTLE_S))["config"])
        if want > 1 and config.get("persist_mode") == "async":
            spec = IntakeSpec(
                name.removeprefix(INTAKE_PREFIX),
                want,
                max_subjects=int(config.get("max_msgs") or 0) or IntakeSpec("x").max_subjects,
                max_bytes=int(config.get("max_bytes") or 0) or IntakeSpec("x").max_bytes,
            )
            await log.session.api(f"$JS.API.STREAM.DELETE.{name}", None, f"replace {name}")
            await log.session.api(f"$JS.API.STREAM.CREATE.{name}", spec.config(), f"make {name}")
            remade.append(name)
        else:
            await _settle(log, name, want, True, {})
    return remade


async def _source_again(log: JetStreamLog, intake: str) -> None:
    """Drop ``intake`` from the liveness stream's sources and add it back: a source
    remembers the last sequence it read, which an intake made again starts below."""
    for keep in (False, True):
        info = await log.session.stream_info(TASKS_STREAM, retry_for=SETTLE_S)
        config = dict(info["config"])
        sources = [
            s
            for s in config.get("sources") or []
            if isinstance(s, dict) and s.get("name") != intake
        ]
        config["sources"] = [*sources, {"name": intake}] if keep else sources
        await log.session.api(
            f"$JS.API.STREAM.UPDATE.{TASKS_STREAM}", config, f"source {intake} again"
        )


async def _settle(
    log: JetStreamLog, stream: str, want: int, scale: bool, safety: dict[str, Any]
) -> tuple[str, int | None, tuple[str, ...]]:
    """Scale ``stream`` to ``want`` replicas if asked, and give it the ``safety`` settings
    it lacks, in one update; what was done."""
    config = dict((await log.session.stream_info(stream, retry_for=SETTLE_S)).get("config") or {})
    have = _replicas(config)
    changes = {key: _merged(key, config, value) for key, value in safety.items()}
    changes = {key: value for key, value in changes.items() if not _holds(key, config, value)}
    rescale = scale and have != want
    if not rescale and not changes:
        return "exists", None, ()
    config.update(changes)
    if rescale:
        config["num_replicas"] = want
    await log.session.api(f"$JS.API.STREAM.UPDATE.{stream}", config, f"update stream {stream}")
    tightened = tuple(_said(key, value) for key, value in changes.items())
    return ("scaled" if rescale else "exists"), (have if rescale else None), tightened


def _merged(key: str, config: dict[str, Any], want: Any) -> Any:
    """What to set: for subjects, the stream's own plus the missing ones (none removed)."""
    if key != "subjects":
        return want
    have = [s for s in config.get("subjects") or [] if isinstance(s, str)]
    return have + [s for s in want if s not in have]


def _holds(key: str, config: dict[str, Any], want: Any) -> bool:
    have = config.get(key)
    if key == "max_msg_size":  # a bound at least as tight is fine
        return isinstance(have, int) and 0 < have <= want
    if key == "subjects":
        return isinstance(have, list) and set(want) <= set(have)
    return bool(have) == want if isinstance(want, bool) else have == want


def _said(key: str, value: Any) -> str:
    if key == "subjects":
        return f"subjects {' '.join(value)}"
    if key == "max_age":
        return f"retention {value // 1_000_000_000}s"
    return f"{key} {value}"


def _replicas(config: dict[str, Any]) -> int:
    value = config.get("num_replicas")
    return value if isinstance(value, int) and value > 0 else 1


def _report(
    info: dict[str, Any],
    kind: str,
    name: str,
    action: str,
    previous: int | None,
    tightened: tuple[str, ...],
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
        tightened=tightened,
    )
