"""The registry on a three-node JetStream cluster (tests/cluster.py, cluster/*.conf).

Real nats-server processes on 127.0.0.1, route ports drawn free per test, client ports
picked by the servers. The failover test prints its figures: run it alone with
``pytest -m slow -s tests/jetstream/test_cluster.py`` to see them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamInfo

from events import STREAM_NAME, Port, Service
from events.liveness import TASKS_STREAM
from events.task import Task
from registry.client import Registry
from registry.errors import RegistryError
from registry.jetstream.checkpoints import BUCKET
from registry.jetstream.log import JetStreamLog
from registry.jetstream.natspy import NatsPyConnection
from registry.jetstream.server import NatsServer
from registry.log.port import ConditionalMessage
from registry.services.feed import read_log
from tests.cluster import DOCUMENTED, LocalCluster, render_configs
from tests.helpers import skyctl

REPO = Path(__file__).resolve().parents[2]


def test_the_documented_configs_are_the_tested_template() -> None:
    """cluster/n1.conf .. n3.conf are what the tests run, with the documented ports."""
    for filename, text in render_configs(DOCUMENTED).items():
        assert (REPO / "cluster" / filename).read_text() == text, (
            f"cluster/{filename} drifted from tests/cluster.py: "
            "regenerate with `python -m tests.cluster cluster`"
        )


def test_replicas_on_a_single_server_is_a_one_line_error(fresh_server: NatsServer) -> None:
    result = skyctl("init", "--replicas", "3", url=fresh_server.url)
    assert result.code == 3
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert "replicas > 1 not supported in non-clustered mode" in result.err
    assert "needs a JetStream cluster" in result.err
    assert "Traceback" not in result.err
    # Nothing was created: the next command on first use makes the single-node stream.
    ok = skyctl("init", url=fresh_server.url)
    assert ok.code == 0, ok.err
    assert ok.lines[0] == f"stream {STREAM_NAME} created (1 replica)"


# -- on a cluster ----------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as running:
        asyncio.run(_wait_for_jetstream(running.urls))
        yield running


async def _wait_for_jetstream(urls: list[str], within: float = 20.0) -> None:
    """Until the cluster has elected its JetStream meta leader (about 1 s after start)."""
    nc = await nats.connect(urls, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    try:
        js = nc.jetstream(timeout=1.0)
        deadline = time.monotonic() + within
        while True:
            try:
                await js.account_info()
                return
            except (nats.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def _stream_info(urls: list[str], stream: str = STREAM_NAME) -> StreamInfo:
    nc = await nats.connect(urls, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    try:
        return await nc.jetstream(timeout=2.0).stream_info(stream)
    finally:
        await nc.close()


async def _settled(urls: list[str], streams: list[str], timeout: float = 60.0) -> None:
    """Until every replica of ``streams`` is current: a stream just scaled up whose leader
    dies before its new replicas caught up may stay leaderless a long while."""
    deadline = time.monotonic() + timeout
    for stream in streams:
        while True:
            info = await _stream_info(urls, stream)
            replicas = (info.cluster.replicas or []) if info.cluster else []
            leader = info.cluster.leader if info.cluster else None
            if leader and len(replicas) == 2 and all(r.current for r in replicas):
                break
            assert time.monotonic() < deadline, f"{stream} never settled: {info.cluster}"
            await asyncio.sleep(0.2)


@pytest.mark.slow
def test_skyctl_creates_and_scales_replicated_stream_and_bucket(cluster: LocalCluster) -> None:
    # Any command creating the stream on first use honours SKYFLOW_REPLICAS ...
    created = skyctl(
        "create", "service", "web", "-p", "80", url=cluster.url, env={"SKYFLOW_REPLICAS": "3"}
    )
    assert created.code == 0, created.err
    info = asyncio.run(_stream_info(cluster.urls))
    assert info.config.num_replicas == 3
    assert info.cluster is not None and info.cluster.leader in cluster.nodes
    # ... and init reports what exists, leaving it alone without --replicas; the missing
    # bucket follows the stream's replica count.
    report = skyctl("init", url=cluster.url)
    assert report.code == 0, report.err
    assert report.lines[0].startswith(f"stream {STREAM_NAME} exists (3 replicas), leader n")
    assert report.lines[1].startswith(f"bucket {BUCKET} created (3 replicas)")
    assert report.lines[2].startswith(f"stream {TASKS_STREAM} created (3 replicas)")
    # --replicas scales what exists, in place, with JetStream's own replication.
    down = skyctl("init", "--replicas", "1", url=cluster.url)
    assert down.code == 0, down.err
    assert down.lines[0].startswith(f"stream {STREAM_NAME} scaled from 3 to 1 replica")
    assert down.lines[1].startswith(f"bucket {BUCKET} scaled from 3 to 1 replica")
    assert down.lines[2].startswith(f"stream {TASKS_STREAM} scaled from 3 to 1 replica")
    up = skyctl("init", "--replicas", "3", url=cluster.url)
    assert up.code == 0, up.err
    assert up.lines[0].startswith(f"stream {STREAM_NAME} scaled from 1 to 3 replicas")
    assert up.lines[1].startswith(f"bucket {BUCKET} scaled from 1 to 3 replicas")
    again = skyctl("init", "--replicas", "3", url=cluster.url)
    assert again.lines[0].startswith(f"stream {STREAM_NAME} exists (3 replicas), leader n")
    for stream in (STREAM_NAME, f"KV_{BUCKET}", TASKS_STREAM):
        assert asyncio.run(_stream_info(cluster.urls, stream)).config.num_replicas == 3
    # Every node serves the registry: one URL of the three is enough to read, and a dead
    # URL in the list is passed over.
    for url in [*cluster.urls, f"nats://127.0.0.1:1, {cluster.urls[1]}"]:
        got = skyctl("get", "svc", "web", "-o", "name", url=url)
        assert (got.code, got.out) == (0, "service/web\n"), got.err


# -- failover ----------------------------------------------------------------------------


@dataclass
class Writes:
    """What the writers saw: each create acknowledged (name -> seq, when it was started and
    acknowledged) or not (name -> the error)."""

    acked: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    unconfirmed: dict[str, str] = field(default_factory=dict)

    def last_ack_before(self, moment: float) -> float:
        return max(acked for _, _, acked in self.acked.values() if acked <= moment)

    def first_ack_started_after(self, moment: float) -> float | None:
        """The first ack of a create begun after ``moment``: acks of creates begun before
        may have been on their way already, and say nothing about the survivors."""
        return min((a for _, started, a in self.acked.values() if started > moment), default=None)


async def _writer(reg: Registry, ns: str, prefix: str, writes: Writes, stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        name = f"{prefix}-{i}"
        i += 1
        started = time.monotonic()
        try:
            record = await reg.create(Service(namespace=ns, name=name, ports=()))
        except RegistryError as exc:  # e.g. WriteNotConfirmed: may or may not be stored
            writes.unconfirmed[name] = f"{type(exc).__name__}: {exc}"
            continue
        writes.acked[name] = (record.seq, started, time.monotonic())


def _nc(reg: Registry) -> NatsClient:
    """The nats-py client under a long-lived registry (it reconnects, the wire one does not)."""
    assert isinstance(reg.log, JetStreamLog) and isinstance(reg.log.conn, NatsPyConnection)
    return reg.log.conn.nc


async def _leader(reg: Registry) -> str:
    info = await _nc(reg).jetstream().stream_info(STREAM_NAME)
    assert info.cluster is not None and info.cluster.leader
    return info.cluster.leader


async def _wait_until_current(reg: Registry, node: str, within: float) -> StreamInfo:
    """Until ``node`` is a replica of the stream again, current, with no lag."""
    deadline = time.monotonic() + within
    while True:
        try:
            info = await _nc(reg).jetstream().stream_info(STREAM_NAME)
        except (nats.errors.Error, TimeoutError):
            info = None
        if info is not None and info.cluster is not None:
            peers = {p.name: p for p in info.cluster.replicas or []}
            peer = peers.get(node)
            if info.cluster.leader == node or (peer and peer.current and not peer.lag):
                return info
        assert time.monotonic() < deadline, f"{node} did not catch up within {within} s"
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_killing_the_stream_leader_loses_nothing_acknowledged(
    cluster: LocalCluster, report: Callable[[str], None]
) -> None:
    init = await asyncio.to_thread(skyctl, "init", "--replicas", "3", url=cluster.url)
    assert init.code == 0, init.err
    ns = f"t-{uuid.uuid4().hex[:10]}"
    writes, stop = Writes(), asyncio.Event()
    async with await Registry.connect(cluster.url, actor="failover-test") as reg:
        writers = [asyncio.create_task(_writer(reg, ns, f"w{k}", writes, stop)) for k in range(8)]
        try:
            await asyncio.sleep(3.0)
            leader = await _leader(reg)
            connected_url = _nc(reg).connected_url
            connected = next(
                (
                    n
                    for n, s in cluster.nodes.items()
                    if connected_url and s.port == connected_url.port
                ),
                "?",
            )
            before = len(writes.acked)
            killed_at = time.monotonic()
            cluster.node(leader).kill()
            # Writes must resume on the two survivors; then keep them going a while.
            deadline = killed_at + 30.0
            while writes.first_ack_started_after(killed_at) is None:
                assert time.monotonic() < deadline, "no write was acknowledged after the kill"
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            await asyncio.gather(*writers)
        new_leader = await _leader(reg)

        first_after = writes.first_ack_started_after(killed_at)
        assert first_after is not None
        outage = first_after - writes.last_ack_before(killed_at)

        # The killed node comes back on its own store and catches up from the others.
        restarted_at = time.monotonic()
        cluster.node(leader).start()
        info = await _wait_until_current(reg, leader, within=30.0)
        catch_up = time.monotonic() - restarted_at

        # Nothing acknowledged is lost, nothing is stored twice.
        events = [r async for r in read_log(reg.log, f"skyflow.svc.{ns}.*")]
        per_name = Counter(r.entry.event.name for r in events if hasattr(r.entry, "event"))
        assert len(per_name) == len(events), "an unreadable event in the log"
        twice = sorted(name for name, n in per_name.items() if n > 1)
        assert not twice, f"stored more than once: {twice[:10]}"
        listed = {r.service.name: r.seq for r in await reg.list(ns)}
        missing = sorted(set(writes.acked) - set(listed))
        assert not missing, f"acknowledged but lost: {missing[:10]}"
        assert all(listed[name] == seq for name, (seq, _, _) in writes.acked.items())
        unexpected = set(listed) - set(writes.acked) - set(writes.unconfirmed)
        assert not unexpected
        # A write reported as failed must not be in the log: a retry that meets its own
        # earlier, stored attempt (a wrong last sequence, or a batch's duplicate ids after
        # a leader change) is that write's success, not a failure.
        stored_unconfirmed = sorted(set(writes.unconfirmed) & set(listed))
        assert not stored_unconfirmed, [
            (name, writes.unconfirmed[name]) for name in stored_unconfirmed[:5]
        ]

    # The restarted node serves the same state to a client that only knows it.
    async with await Registry.connect(cluster.node(leader).url) as alone:
        assert {r.service.name: r.seq for r in await alone.list(ns)} == listed

    assert info.state.last_seq >= max(seq for seq, _, _ in writes.acked.values())
    report(
        f"cluster failover: killed stream leader {leader} (client on {connected}); "
        f"new leader {new_leader}; {before} creates acked before the kill, "
        f"{len(writes.acked)} in all; writes resumed after {outage:.2f} s "
        "(last ack before the kill -> first ack after); "
        f"{len(writes.unconfirmed)} unconfirmed ({len(stored_unconfirmed)} of them stored); "
        f"{leader} restarted and current again in {catch_up:.2f} s"
    )
    for name, reason in list(writes.unconfirmed.items())[:5]:
        report(f"  unconfirmed {name}: {reason}")


@pytest.mark.slow
async def test_a_batch_retried_while_its_first_attempt_is_proposed_is_ours(
    cluster: LocalCluster,
) -> None:
    """A replicated stream's leader answers a batch whose ids it is still proposing with
    10158 "duplicate message id is in process": the retry waits for them to be stored and
    then finds them ours. Sent three times at once, every copy returns the same sequences."""
    init = await asyncio.to_thread(skyctl, "init", "--replicas", "3", url=cluster.url)
    assert init.code == 0, init.err
    ns = f"t-{uuid.uuid4().hex[:10]}"
    async with await Registry.connect(cluster.url) as reg:
        for i in range(20):
            batch = [
                ConditionalMessage(f"skyflow.svc.{ns}.s{i}-{k}", b"", uuid.uuid4().hex, 0)
                for k in range(2)
            ]
            copies = await asyncio.gather(*(reg.log.append_batch(batch) for _ in range(3)))
            assert copies[0] == copies[1] == copies[2], copies
            stored = await reg.log.last_many([m.subject for m in batch])
            assert [stored[m.subject].seq for m in batch] == copies[0]


# -- live tasks on a cluster ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(200)
async def test_killing_the_liveness_leader_drops_no_live_task(
    cluster: LocalCluster, report: Callable[[str], None]
) -> None:
    """Tasks announced on a cluster stay live through a kill of the liveness stream's
    leader (heartbeats go on, through their intake, to the new one), and one that crashes
    then still expires."""
    # TTL 90 s: a task's last copy before the kill may be a third of its TTL old, and the
    # liveness stream's new leader may take 30 s more than usual to set up its sources
    # again (an unanswered request is retried after 30 s: docs/discovery.md). At TTL 30 s
    # that left 20 s for about 37 s, and a loaded run dropped the tasks.
    ns, service, ttl = "shop", "shop/web", 90
    async with (
        await Registry.connect(cluster.url) as announcing,
        await Registry.connect(cluster.url) as crashing,
        await Registry.connect(cluster.url) as reading,
        reading.resolver() as resolver,
    ):
        await reading.create(
            Service(
                namespace=ns,
                name="web",
                selector={"app": "web"},
                ports=(Port(port=80, target_port=8080),),
            )
        )
        tasks = [
            Task(namespace=ns, name=f"web-{i}", labels={"app": "web"}, address=f"10.4.0.{i + 1}")
            for i in range(20)
        ]
        # Announced before `init --replicas 3`: the stream is made with one replica and
        # asynchronous persistence, which JetStream cannot replicate, so init makes it
        # again with three; the next renewals fill it.
        announcer = await announcing.announcer()
        await announcer.announce(tasks, ttl)
        crasher = await crashing.announcer()
        await crasher.announce(
            [Task(namespace=ns, name="crash", labels={"app": "web"}, address="10.4.1.1")], ttl
        )
        init = await asyncio.to_thread(skyctl, "init", "--replicas", "3", url=cluster.url)
        assert init.code == 0, init.err
        assert init.lines[2].startswith(f"stream {TASKS_STREAM} recreated from 1 to 3 replicas")
        # Fill the streams made again now rather than at the next renewals (TTL / 3 away),
        # and kill a leader only once every replica has caught up (this is a test of the
        # liveness stream's failover, not of a scale-up interrupted).
        announcer.renew_all()
        crasher.renew_all()
        await _settled(cluster.urls, [STREAM_NAME, TASKS_STREAM])

        totals: list[tuple[float, int]] = []

        async def record() -> None:
            async for endpoints in resolver.watch(service):
                totals.append((time.monotonic(), 0 if endpoints is None else endpoints.total))

        recorder = asyncio.create_task(record())
        try:
            started = time.monotonic()
            while not totals or totals[-1][1] != 21:
                assert time.monotonic() - started < 20, totals[-5:]
                await asyncio.sleep(0.05)
            info = await _stream_info(cluster.urls, TASKS_STREAM)
            assert info.config.num_replicas == 3 and info.cluster is not None
            leader = info.cluster.leader
            assert leader is not None
            killed_at = time.monotonic()
            cluster.node(leader).kill()
            await crasher.close()  # "crash" stops renewing now, without a withdrawal
            while not totals or totals[-1][1] != 20:
                assert time.monotonic() - killed_at < ttl + 6, totals[-5:]
                await asyncio.sleep(0.05)
            crash_gone = time.monotonic() - killed_at
            await asyncio.sleep(max(0.0, ttl + 2 - crash_gone))  # every live task renewed since
        finally:
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
        after = [n for when, n in totals if when > killed_at]
        assert min(after, default=21) >= 20, f"live tasks dropped after the kill: {after}"
        assert after[-1] == 20
        one_shot = await reading.endpoints(ns, "web")
        assert sorted(a.task for a in one_shot.addresses) == sorted(t.name for t in tasks)
        new_leader = (
            await _stream_info(
                [u for n, u in zip(cluster.nodes, cluster.urls, strict=True) if n != leader],
                TASKS_STREAM,
            )
        ).cluster
    report(
        f"cluster: killed the liveness stream's leader {leader} under 20 live tasks (TTL {ttl} s); "
        f"none dropped (fewest seen after the kill: {min(after)}); new leader "
        f"{new_leader.leader if new_leader else '?'}; a task that crashed at the kill was gone "
        f"{crash_gone:.1f} s later"
    )
