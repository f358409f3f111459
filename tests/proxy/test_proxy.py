"""``skyctl proxy`` in the kernel, with real traffic: HTTP backends announced as tasks on
loopback addresses, reached through cluster IPs and node ports that nftables forwards."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from events import Service, ServiceType, encode, new_event_id, utc_now
from events.service import Ingress, LoadBalancerStatus, ServiceCreated, ServiceStatus
from events.subjects import subject_for
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.proxy.nftables import Nftables, observe, observed_plan
from registry.proxy.plan import Backend as Target
from registry.proxy.plan import Frontend, Plan
from tests.helpers import Lines, raw_publish, skyctl, start
from tests.proxy.traffic import NS, connection_to, http_backends, http_get, nft, spread, task, web

NODE = "127.0.0.1"  # node ports are taken here


@dataclass
class Proxy:
    proc: subprocess.Popen[str]
    lines: Lines
    table: str

    async def plan(self) -> Plan | None:
        observed = observe(await Nftables(self.table).listing())
        return None if observed is None else observed_plan(observed)

    async def until(self, check: Callable[[Plan], bool], timeout: float = 15.0) -> Plan:
        deadline = time.monotonic() + timeout
        while True:
            plan = await self.plan()
            if plan is not None and check(plan):
                return plan
            assert time.monotonic() < deadline, f"the kernel never got there: {plan}"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def proxy(url: str, table: str) -> AsyncIterator[Proxy]:
    proc = start(
        *("proxy", "--node-address", NODE, "--table", table, "--check-every", "1"), url=url
    )
    lines = Lines(proc)
    await lines.wait_for(lambda line: line.startswith("proxy: forwarding"), timeout=30)
    try:
        yield Proxy(proc, lines, table)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 15)


async def test_cluster_ip_and_node_port_reach_ready_endpoints_evenly(
    fresh_server: NatsServer, nft_table: str
) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
    async with (
        http_backends(addresses) as backends,
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backends[0].port))
        cluster_ip, node_port = record.service.cluster_ip, record.service.ports[0].node_port
        assert cluster_ip is not None and node_port is not None
        announcer = await registry.announcer()
        await announcer.announce([task(f"web-{i}", a) for i, a in enumerate(addresses)], ttl=30)
        async with proxy(url, nft_table) as running:
            await running.until(lambda p: len(p.get(Frontend(cluster_ip, "tcp", 80), ())) == 3)
            curl = await asyncio.to_thread(
                subprocess.run,
                ["curl", "-sS", "-m", "5", f"http://{cluster_ip}/"],
                capture_output=True,
                text=True,
            )
            assert curl.stdout in addresses, (curl.stdout, curl.stderr)
            assert await http_get(NODE, node_port) in addresses
            # Even: each within 10 % of a third. (6,000 rather than 3,000 connections:
            # with 3,000 the chance that a fair random choice misses by 10 % is 1 in
            # about 3,000 runs; with 6,000 it is 1 in tens of millions.)
            got = await spread(cluster_ip, 80, 6_000, backends)
            assert set(got) == set(addresses), got
            assert all(1_800 <= n <= 2_200 for n in got.values()), got


async def test_a_service_with_no_ready_endpoint_refuses_at_once(
    fresh_server: NatsServer, nft_table: str
) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        record = await registry.create(web(8080))
        cluster_ip, node_port = record.service.cluster_ip, record.service.ports[0].node_port
        assert cluster_ip is not None and node_port is not None
        async with proxy(url, nft_table) as running:
            await running.until(lambda p: p.get(Frontend(cluster_ip, "tcp", 80)) == ())
            for address, port in ((cluster_ip, 80), (NODE, node_port)):
                started = time.monotonic()
                try:
                    await http_get(address, port, timeout=5)
                except ConnectionRefusedError:
                    pass
                else:
                    raise AssertionError(f"{address}:{port} answered with no endpoint")
                assert time.monotonic() - started < 1.0  # refused, not left to time out


async def test_a_killed_task_gets_nothing_after_its_ttl_and_a_withdrawn_one_drains(
    fresh_server: NatsServer, nft_table: str, report: Callable[[str], None]
) -> None:
    url = fresh_server.url
    ttl = 2
    addresses = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
    async with (
        http_backends(addresses) as (killed, withdrawn, stays),
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(killed.port))
        cluster_ip = record.service.cluster_ip
        assert cluster_ip is not None
        announcer = start(
            *("announce", "task", "k", "--address", killed.address, "--labels", "app=web"),
            *("-n", NS, "--ttl", f"{ttl}s"),
            url=url,
        )
        await Lines(announcer).wait_for(lambda line: "announced" in line)
        await (await registry.announcer()).announce([task("s", stays.address)], ttl=30)
        async with proxy(url, nft_table) as running:
            async with registry.announce(task("w", withdrawn.address), ttl=30):
                await running.until(lambda p: len(p.get(Frontend(cluster_ip, "tcp", 80), ())) == 3)
                # A connection to the one about to be withdrawn, left open.
                held = await connection_to(withdrawn, cluster_ip)
                announcer.kill()
                killed_at = time.monotonic()
                last_to_killed = killed_at
                while time.monotonic() - killed_at < ttl + 3:
                    before = killed.accepted
                    await http_get(cluster_ip, 80)
                    if killed.accepted > before:
                        last_to_killed = time.monotonic()
                after_kill = last_to_killed - killed_at
                assert after_kill <= ttl + 1, (
                    f"the killed task got connections {after_kill:.2f} s on"
                )
            # Withdrawn (the announce block is left): no new connection 1 s later.
            await asyncio.sleep(1.0)
            before = withdrawn.accepted
            for _ in range(200):
                assert await http_get(cluster_ip, 80) == stays.address
            assert withdrawn.accepted == before
            reader, writer = held
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.endswith(withdrawn.address.encode()), answer  # drained, not cut
            writer.close()
    report(
        f"proxy: SIGKILLed announcer (TTL {ttl} s): its last new connection {after_kill:.2f} s "
        "after the kill; a withdrawn task: no new connection 1 s later, its open one completed"
    )


async def test_apply_moving_target_port_or_selector_moves_traffic(
    fresh_server: NatsServer, nft_table: str
) -> None:
    url = fresh_server.url
    async with (
        http_backends(["127.0.0.41"]) as (old,),
        http_backends(["127.0.0.41"]) as (new_port,),
        http_backends(["127.0.0.42"]) as (other,),
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(old.port, kind=ServiceType.CLUSTER_IP))
        cluster_ip = record.service.cluster_ip
        assert cluster_ip is not None
        await (await registry.announcer()).announce(
            [task("a", old.address), task("b", other.address, app="other")], ttl=30
        )
        async with proxy(url, nft_table) as running:
            front = Frontend(cluster_ip, "tcp", 80)
            await running.until(lambda p: len(p.get(front, ())) == 1)
            assert await http_get(cluster_ip, 80) == old.address and old.accepted == 1
            for port, app, backend in (
                (new_port.port, "web", new_port),
                (other.port, "other", other),
            ):
                manifest = _manifest(cluster_ip, port, app)
                applied = await asyncio.to_thread(
                    skyctl, "apply", "-f", "-", url=url, stdin=manifest
                )
                assert applied.code == 0, applied.err
                await running.until(_forwards_only(front, Target(backend.address, port)))
                before = backend.accepted
                await http_get(cluster_ip, 80)
                assert backend.accepted == before + 1


def _has(front: Frontend) -> Callable[[Plan], bool]:
    return lambda plan: front in plan


def _forwards_only(front: Frontend, target: Target) -> Callable[[Plan], bool]:
    return lambda plan: list(plan.get(front, ())) == [target]


def _manifest(cluster_ip: str, target_port: int, app: str) -> str:
    return (
        "apiVersion: skyflow.io/v1\nkind: Service\n"
        f"metadata: {{name: web, namespace: {NS}}}\n"
        f"spec: {{type: ClusterIP, clusterIP: {cluster_ip}, selector: {{app: {app}}}, "
        f"ports: [{{port: 80, targetPort: {target_port}}}]}}\n"
    )


async def test_a_restart_keeps_traffic_flowing_and_a_flushed_table_is_repaired(
    fresh_server: NatsServer, nft_table: str
) -> None:
    url = fresh_server.url
    async with (
        http_backends(["127.0.0.51"]) as (backend,),
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backend.port, kind=ServiceType.CLUSTER_IP))
        cluster_ip = record.service.cluster_ip
        assert cluster_ip is not None
        await (await registry.announcer()).announce([task("a", backend.address)], ttl=30)
        front = Frontend(cluster_ip, "tcp", 80)
        async with proxy(url, nft_table) as running:
            await running.until(lambda p: len(p.get(front, ())) == 1)
            held = await connection_to(backend, cluster_ip)
        # Stopped: forwarding stays, open connections and new ones alike.
        assert await http_get(cluster_ip, 80) == backend.address
        async with proxy(url, nft_table) as running:
            assert await http_get(cluster_ip, 80) == backend.address
            reader, writer = held
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).endswith(backend.address.encode())
            writer.close()
            # Someone flushes the ruleset (only where nothing else is in it: a machine's
            # own firewall is not a test's to wipe; else our table alone).
            tables = await nft("list", "tables")
            alone = tables.strip() == f"table ip {nft_table}"
            await nft(*(("flush", "ruleset") if alone else ("delete", "table", "ip", nft_table)))
            await running.until(lambda p: front in p, timeout=15)  # checked every 1 s
            assert await http_get(cluster_ip, 80) == backend.address


async def test_forged_addresses_are_never_programmed(
    fresh_server: NatsServer, nft_table: str
) -> None:
    """Services written around the allocator with raw nats-py, naming loopback, an
    address outside the range, or another service's cluster IP: none reaches the kernel,
    and the other service's address is forwarded for neither (it could be taken)."""
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        victim = await registry.create(web(8080, kind=ServiceType.CLUSTER_IP))
        taken = victim.service.cluster_ip
        assert taken is not None
        for name, ip in (("lo", "127.0.0.1"), ("out", "192.0.2.77"), ("copy", taken)):
            forged = Service(
                namespace="evil",
                name=name,
                selector={"app": "x"},
                ports=victim.service.ports,
                cluster_ip=ip,
            )
            event = ServiceCreated(
                id=new_event_id(), time=utc_now(), actor="mallory", service=forged
            )
            await raw_publish(url, subject_for("evil", name), encode(event))
        async with proxy(url, nft_table) as running:
            plan = await running.until(lambda p: True)
            addresses = {f.address for f in plan}
            assert not addresses & {"127.0.0.1", "192.0.2.77", taken}, plan
            running.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(running.proc.wait, 15)
            assert running.proc.stderr is not None
            stderr = await asyncio.to_thread(running.proc.stderr.read)
            assert "outside the service range" in stderr and "loopback" in stderr, stderr
            assert f"{taken}:80/tcp is claimed by evil/copy, {NS}/web" in stderr, stderr


async def test_a_load_balancers_ingress_ip_from_its_controller_is_forwarded_a_bad_one_not(
    fresh_server: NatsServer, nft_table: str
) -> None:
    url = fresh_server.url
    async with (
        http_backends(["127.0.0.71"]) as (backend,),
        await Registry.connect(url) as registry,
    ):
        await registry.create(web(backend.port, kind=ServiceType.LOAD_BALANCER))
        await (await registry.announcer()).announce([task("a", backend.address)], ttl=30)
        async with proxy(url, nft_table) as running:
            for ip, forwarded in (("203.0.113.9", True), ("127.0.0.1", False)):
                status = ServiceStatus(load_balancer=LoadBalancerStatus(ingress=(Ingress(ip=ip),)))
                await registry.set_status(NS, "web", status)
                front = Frontend(ip, "tcp", 80)
                if forwarded:
                    await running.until(_has(front))
                    assert await http_get(ip, 80) == backend.address
                else:
                    # The controller moved it: the old ingress goes, the bad one never comes.
                    await running.until(lambda p: Frontend("203.0.113.9", "tcp", 80) not in p)
                    assert front not in (await running.plan() or {})
