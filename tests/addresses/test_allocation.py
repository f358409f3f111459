"""Stable addresses, allocated in the same atomic batch as the service, on a
real server: no address is ever held twice or by a deleted service, with writers racing,
crashing and forging records."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nats
import pytest

from events import (
    STREAM_NAME,
    AddressReleased,
    Port,
    Service,
    ServiceCreated,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from registry.addresses.holdings import Address, held_by
from registry.client import Registry
from registry.errors import AddressTaken, InvalidInput, RangeExhausted
from registry.jetstream.server import NatsServer
from registry.services.audit import Break, verify
from tests.helpers import skyctl, stream_last_seq

ROOT = Path(__file__).resolve().parents[2]


async def breaks(registry: Registry) -> list[str]:
    return [str(b) async for b in verify(registry.log) if isinstance(b, Break)]


async def test_fifty_concurrent_creates_get_fifty_distinct_addresses(url: str, ns: str) -> None:
    registries = [await Registry.connect(url) for _ in range(5)]
    try:
        services = [
            Service(
                namespace=ns,
                name=f"s{i}",
                type="NodePort",
                ports=(Port(port=80, target_port=8080),),
            )
            for i in range(50)
        ]
        records = await asyncio.gather(
            *(registries[i % 5].create(s) for i, s in enumerate(services))
        )
        ips = {r.service.cluster_ip for r in records}
        node_ports = {p.node_port for r in records for p in r.service.ports}
        assert len(ips) == 50 and None not in ips
        assert len(node_ports) == 50 and None not in node_ports
        ranges = await registries[0].ranges()
        assert all(ranges.contains(a) for r in records for a in held_by(r.service))
        listed = {r.service.name: r.service for r in await registries[0].list(ns)}
        assert {n: s.cluster_ip for n, s in listed.items()} == {
            r.service.name: r.service.cluster_ip for r in records
        }
        assert await breaks(registries[0]) == []
    finally:
        for registry in registries:
            await registry.close()


async def test_a_small_range_runs_out_with_nothing_written(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await registry.set_ranges("10.0.0.0/29", None)  # 6 usable addresses
        made = await asyncio.gather(
            *(registry.create(Service(namespace="small", name=f"s{i}")) for i in range(6))
        )
        assert sorted(r.service.cluster_ip or "" for r in made) == [
            f"10.0.0.{i}" for i in range(1, 7)
        ]
        before = await stream_last_seq(url)
    full = await asyncio.to_thread(skyctl, "create", "svc", "s7", "-n", "small", url=url)
    assert full.code == 1
    assert full.err.startswith("error: no free cluster IP in 10.0.0.0/29")
    assert full.err.count("\n") == 1
    assert await stream_last_seq(url) == before
    async with await Registry.connect(url) as registry:
        with pytest.raises(RangeExhausted):
            await registry.create(Service(namespace="small", name="s8"))
        # A headless service needs no address, and an ExternalName none either.
        await registry.create(Service(namespace="small", name="h", cluster_ip="None"))
        await registry.create(
            Service(namespace="small", name="x", type="ExternalName", external_name="x.example.com")
        )
        assert await breaks(registry) == []


async def test_delete_frees_and_create_reuses_only_what_is_free(fresh_server: NatsServer) -> None:
    async with await Registry.connect(fresh_server.url) as registry:
        await registry.set_ranges("10.1.0.0/30", (30100, 30101))  # 2 addresses, 2 node ports
        a = await registry.create(
            Service(name="a", type="NodePort", ports=(Port(port=80, target_port=80),))
        )
        b = await registry.create(
            Service(name="b", type="NodePort", ports=(Port(port=80, target_port=80),))
        )
        with pytest.raises(RangeExhausted):
            await registry.create(Service(name="c"))
        await registry.delete("default", "a")
        c = await registry.create(
            Service(name="c", type="NodePort", ports=(Port(port=81, target_port=81),))
        )
        assert c.service.cluster_ip == a.service.cluster_ip != b.service.cluster_ip
        assert c.service.ports[0].node_port == a.service.ports[0].node_port
        # b's addresses are still b's: asking for them names b.
        with pytest.raises(AddressTaken, match="held by service default/b"):
            await registry.create(Service(name="d", cluster_ip=b.service.cluster_ip))
        with pytest.raises(InvalidInput, match=r"outside the range 10\.1\.0\.0/30"):
            await registry.create(Service(name="e", cluster_ip="10.9.9.9"))
        assert await breaks(registry) == []


async def test_a_type_change_takes_and_gives_up_node_ports(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        first = await registry.create(
            Service(namespace=ns, name="web", ports=(Port(port=80, target_port=8080),))
        )
        ip = first.service.cluster_ip
        node = await registry.apply(
            Service(
                namespace=ns, name="web", type="NodePort", ports=(Port(port=80, target_port=8080),)
            )
        )
        assert node.record is not None
        assert node.record.service.cluster_ip == ip  # never changes while it lives
        port = node.record.service.ports[0].node_port
        assert port is not None
        back = await registry.apply(
            Service(namespace=ns, name="web", ports=(Port(port=80, target_port=8080),))
        )
        assert back.record is not None and back.record.service.ports[0].node_port is None
        assert back.record.service.cluster_ip == ip
        # The node port is free again: another service may ask for it.
        other = await registry.create(
            Service(
                namespace=ns,
                name="other",
                type="NodePort",
                ports=(Port(port=80, target_port=80, node_port=port),),
            )
        )
        assert other.service.ports[0].node_port == port
        with pytest.raises(InvalidInput, match="immutable"):
            await registry.apply(Service(namespace=ns, name="web", cluster_ip="None"))
        assert await breaks(registry) == []


CRASH_MID_BATCH = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from events import Service
    from registry.client import Registry
    from registry.jetstream.log import JetStreamLog

    real = JetStreamLog._send_batch

    async def send_then_die(self, messages):
        # Every message but the commit reaches the server; then the writer dies.
        for message in messages[:-1]:
            await self.conn.publish(message.subject, message.data, headers={
                **message.headers,
                "Nats-Msg-Id": message.msg_id,
                "Nats-Expected-Last-Subject-Sequence": str(message.expected_last_subject_seq),
                "Nats-Batch-Id": "crash-" + message.msg_id,
                "Nats-Batch-Sequence": "1",
            })
        await self.conn.flush(2)
        os.kill(os.getpid(), signal.SIGKILL)

    JetStreamLog._send_batch = send_then_die

    async def main():
        async with await Registry.connect(sys.argv[1]) as registry:
            await registry.create(Service(namespace=sys.argv[2], name="crash",
                                          cluster_ip=sys.argv[3]))
    asyncio.run(main())
    """
)


async def test_a_writer_killed_inside_a_batch_leaves_no_service_and_no_address(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        ranges = await registry.ranges()
        wanted = str(ranges.network.network_address + 4242)
        before = await stream_last_seq(url)
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CRASH_MID_BATCH, url, ns, wanted],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert await stream_last_seq(url) == before  # the first message is not stored
        with pytest.raises(Exception, match="not found"):
            await registry.get(ns, "crash")
        # The address is free at once: the abandoned batch holds nothing.
        made = await registry.create(Service(namespace=ns, name="crash", cluster_ip=wanted))
        assert made.service.cluster_ip == wanted
        assert await breaks(registry) == []


async def test_a_bulk_writer_killed_mid_run_leaves_every_address_consistent(
    url: str, ns: str, tmp_path: Path
) -> None:
    docs = "\n---\n".join(
        json.dumps(
            {
                "apiVersion": "skyflow.io/v1",
                "kind": "Service",
                "metadata": {"name": f"k{i}", "namespace": ns},
                "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 80}]},
            }
        )
        for i in range(1500)
    )
    path = tmp_path / "many.yaml"
    path.write_text(docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")} | {"NATS_URL": url}
    start = await stream_last_seq(url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "apply",
        "-f",
        str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    for _ in range(3000):  # kill it once its first group is in
        if await stream_last_seq(url) != start or proc.returncode is not None:
            break
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    async with await Registry.connect(url) as registry:
        stored = await registry.list(ns)
        assert 0 < len(stored) <= 1500
        held = [a for r in stored for a in held_by(r.service)]
        assert len(held) == len(set(held)) == 2 * len(stored)
        assert await breaks(registry) == []


async def test_a_forged_record_cannot_give_one_address_to_two_services(
    fresh_server: NatsServer,
) -> None:
    """A writer may publish address records (they travel in its batches), so a hostile
    one can forge them: a release of another service's address must free nothing.
    (On a server of its own: the forgery it leaves would fail every later audit.)"""
    url, ns = fresh_server.url, "forged"
    async with await Registry.connect(url) as registry:
        victim = await registry.create(Service(namespace=ns, name="victim"))
        ip = victim.service.cluster_ip
        assert ip is not None
        address = Address("ClusterIP", ip)  # type: ignore[arg-type]
        last = await registry.log.last(address.subject)
        assert last is not None
        forged = AddressReleased(
            id=new_event_id(),
            time=utc_now(),
            actor="mallory",
            kind="ClusterIP",
            address=ip,
            holder={"namespace": ns, "name": "victim", "uid": victim.event_id},
        )
        nc = await nats.connect(url)
        try:
            await nc.jetstream().publish(
                address.subject,
                encode(forged),
                headers={"Nats-Expected-Last-Subject-Sequence": str(last.seq)},
            )
        finally:
            await nc.close()
        with pytest.raises(AddressTaken, match=f"held by service {ns}/victim"):
            await registry.create(Service(namespace=ns, name="thief", cluster_ip=ip))
        found = await breaks(registry)
        assert any(f"service {ns}/victim has cluster IP {ip}" in b for b in found), found


async def test_a_stream_from_before_addresses_is_refused_then_upgraded_by_init(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    nc = await nats.connect(url)
    try:
        # The stream and an event as the previous release wrote them.
        await nc.request(
            f"$JS.API.STREAM.CREATE.{STREAM_NAME}",
            json.dumps(
                {
                    "name": STREAM_NAME,
                    "subjects": ["skyflow.svc.*.*"],
                    "storage": "file",
                    "deny_delete": True,
                    "deny_purge": True,
                    "allow_direct": True,
                    "duplicate_window": 120_000_000_000,
                    "max_msg_size": 69632,
                }
            ).encode(),
        )
        old = encode(
            ServiceCreated(
                id=new_event_id(),
                time=utc_now(),
                actor="old@host",
                service=Service(name="legacy", ports=(Port(port=80, target_port=8080),)),
            )
        )
        raw = json.loads((await nc.request("skyflow.svc.default.legacy", old)).data)
        assert raw.get("seq") == 1
    finally:
        await nc.close()
    refused = await asyncio.to_thread(skyctl, "get", "svc", url=url)
    assert refused.code == 3
    assert "made by an older skyctl" in refused.err and "skyctl init" in refused.err
    init = await asyncio.to_thread(skyctl, "init", url=url)
    assert init.code == 0, init.err
    assert "allow_atomic" in init.out and "1 service has no addresses" in init.out
    async with await Registry.connect(url) as registry:
        legacy = await registry.get("default", "legacy")
        assert legacy.service.cluster_ip is None
    done = await asyncio.to_thread(skyctl, "init", "--allocate-missing", url=url)
    assert done.code == 0 and "service/legacy -n default given cluster IP" in done.out
    async with await Registry.connect(url) as registry:
        given = await registry.get("default", "legacy")
        assert given.service.cluster_ip is not None and given.event_id == legacy.event_id
        assert await breaks(registry) == []
    assert subject_for("default", "legacy") == "skyflow.svc.default.legacy"
