"""The one-shot path (wire client, LiteLog, LiteRegistry) against real servers.

It must give ``Registry``'s answers: same checks on connect, same conditional and
idempotent writes, same state; and hand anything unusual to ``Registry``.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import msgpack
import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js.api import StreamConfig

from events import Service, ServiceCreated, StreamSpec, encode, subject_for, utc_now
from events.choices import ServiceType
from events.plain import PlainService
from registry.client import Registry
from registry.credentials import Credentials
from registry.entry import Skipped
from registry.errors import (
    AlreadyExists,
    NotAuthenticated,
    NotFound,
    StreamMisconfigured,
    Unreachable,
    UnreadableHistory,
)
from registry.jetstream import JetStreamLog, WrongLastSequence
from registry.jetstream.lite import LiteLog, NeedsNatsPy
from registry.jetstream.wire import WireClient
from registry.lite import LiteRegistry
from registry.projector import rebuild
from registry.server import NatsServer
from tests.conftest import stream_last_seq


def web(namespace: str, name: str = "web", port: int = 80) -> PlainService:
    from events.plain import PlainPort

    return PlainService(
        namespace, name, ServiceType.CLUSTER_IP, {"app": name}, (PlainPort(port, port),), None
    )


async def test_lite_and_full_registries_agree(url: str, ns: str) -> None:
    # (Registry first: on a new server it creates the stream, which LiteLog leaves to it.)
    async with await Registry.connect(url) as full, await LiteRegistry.connect(url) as lite:
        assert lite.log is not None  # really the wire path
        created = await lite.create(web(ns))
        record = await full.get(ns, "web")
        assert (record.seq, record.event_id, record.created) == (
            created.seq,
            created.event_id,
            created.created,
        )
        assert record.service.model_dump() == {
            "namespace": ns,
            "name": "web",
            "type": ServiceType.CLUSTER_IP,
            "selector": {"app": "web"},
            "ports": ({"port": 80, "target_port": 80, "protocol": "TCP"},),
            "cluster": None,
        }
        with pytest.raises(AlreadyExists):
            await lite.create(web(ns))
        await full.create(Service(namespace=ns, name="db"))
        assert [v.key for v in await lite.list(ns)] == [(ns, "db"), (ns, "web")]
        assert (await lite.get(ns, "db")).seq == (await full.get(ns, "db")).seq
        deleted = await lite.delete(ns, "web")
        assert deleted.seq == created.seq
        with pytest.raises(NotFound):
            await full.get(ns, "web")
        with pytest.raises(NotFound):
            await lite.delete(ns, "web")
        again = await lite.create(web(ns, port=81))
        listed = await full.list(ns)
        assert [r.key for r in listed] == [(ns, "db"), (ns, "web")]
        assert listed[1].seq == again.seq and listed[1].service.ports[0].port == 81


operations = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.sampled_from(["a", "b", "c"])), max_size=20
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
async def test_random_mixed_writes_fold_to_what_lite_lists(
    url: str, ops: list[tuple[bool, bool, str]]
) -> None:
    ns = f"l-{uuid.uuid4().hex[:10]}"
    model: dict[str, int] = {}
    async with await Registry.connect(url) as full, await LiteRegistry.connect(url) as lite:
        for use_lite, is_create, name in ops:
            try:
                if is_create:
                    if use_lite:
                        model[name] = (await lite.create(web(ns, name))).seq
                    else:
                        model[name] = (await full.create(Service(namespace=ns, name=name))).seq
                else:
                    await (lite if use_lite else full).delete(ns, name)
                    del model[name]
            except (AlreadyExists, NotFound):
                pass
        assert {v.service.name: v.seq for v in await lite.list(ns)} == model
        rebuilt = await rebuild(full.log, f"skyflow.svc.{ns}.*")
        assert {k[1]: r.seq for k, r in rebuilt.projection.services.items()} == model


async def test_a_retried_append_is_not_appended_twice(url: str, ns: str) -> None:
    await (await JetStreamLog.open(url)).close()  # the stream exists (LiteLog leaves that to it)
    async with await LiteLog.open(url) as log:
        subject = subject_for(ns, "once")
        event = ServiceCreated(
            id=uuid.uuid4().hex,
            time=utc_now(),
            actor="t@h",
            service=Service(namespace=ns, name="once"),
        )
        data = encode(event)
        first = await log.append(subject, data, msg_id=event.id, expected_last_subject_seq=0)
        before = await stream_last_seq(url)
        assert (
            await log.append(subject, data, msg_id=event.id, expected_last_subject_seq=0) == first
        )
        assert await stream_last_seq(url) == before
        with pytest.raises(WrongLastSequence):
            await log.append(subject, data, msg_id=uuid.uuid4().hex, expected_last_subject_seq=0)


async def test_unusual_and_unreadable_events_go_through_the_models(url: str, ns: str) -> None:
    """Events another writer produced: lower-case enums (valid), garbage, wrong subject."""
    reported: list[Skipped] = []
    async with await JetStreamLog.open(url) as log:
        # valid, but not in the canonical spelling events.plain insists on
        odd = msgpack.unpackb(
            encode(
                ServiceCreated(
                    id="odd1",
                    time=utc_now(),
                    actor="x@h",
                    service=Service(namespace=ns, name="odd"),
                )
            )
        )
        odd["service"]["type"] = "nodeport"
        await log.js.publish(subject_for(ns, "odd"), msgpack.packb(odd))
        # a readable create, then garbage on top of it
        good = ServiceCreated(
            id="good1", time=utc_now(), actor="x@h", service=Service(namespace=ns, name="poisoned")
        )
        await log.js.publish(subject_for(ns, "poisoned"), encode(good))
        await log.js.publish(subject_for(ns, "poisoned"), b"\xc1 not msgpack")
        # a create naming another service than its subject
        stray = ServiceCreated(
            id="stray1", time=utc_now(), actor="x@h", service=Service(namespace=ns, name="other")
        )
        await log.js.publish(subject_for(ns, "stray"), encode(stray))
    async with await LiteRegistry.connect(url, on_skipped=reported.append) as lite:
        odd_view = await lite.get(ns, "odd")
        assert odd_view.service.type is ServiceType.NODE_PORT
        assert (await lite.get(ns, "poisoned")).event_id == "good1"
        with pytest.raises(NotFound):
            await lite.get(ns, "stray")
        listed = await lite.list(ns)
        assert [v.service.name for v in listed] == ["odd", "poisoned"]
        # no write over what this version cannot read, as Registry refuses it
        with pytest.raises(UnreadableHistory, match="seq"):
            await lite.delete(ns, "poisoned")
        with pytest.raises(UnreadableHistory):
            await lite.create(web(ns, "poisoned"))
        assert (await lite.get(ns, "poisoned")).event_id == "good1"
    assert {s.subject.rpartition(".")[2] for s in reported} >= {"poisoned", "stray"}
    async with await Registry.connect(url) as full:
        assert [r.service.name for r in await full.list(ns)] == ["odd", "poisoned"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"max_age": 3600.0}, "max_age is 3600"),
        ({"max_msgs_per_subject": 1}, "max_msgs_per_subject is 1"),
        ({"deny_delete": False}, "deny_delete is False"),
        ({"allow_direct": False}, "allow_direct is off"),
    ],
)
async def test_lite_refuses_a_stream_that_could_lose_history(
    url: str, change: dict[str, object], problem: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    spec = StreamSpec(name=f"LITE_RISKY_{tag}", subjects=(f"lrisky{tag}.*.*",))
    async with await JetStreamLog.open(url) as good:
        config: StreamConfig = JetStreamLog(good.nc, spec, url, 5).stream_config()
        for key, value in change.items():
            setattr(config, key, value)
        await good.js.add_stream(config)
        try:
            with pytest.raises(StreamMisconfigured, match=problem):
                await LiteLog.open(url, spec=spec)
            with pytest.raises(StreamMisconfigured, match=problem):
                await LiteRegistry.connect(url, spec=spec)
        finally:
            await good.js.delete_stream(spec.name)


async def test_a_missing_stream_is_created_through_nats_py(fresh_server: NatsServer) -> None:
    with pytest.raises(NeedsNatsPy):
        await LiteLog.open(fresh_server.url)
    async with await LiteRegistry.connect(fresh_server.url) as first:
        assert first.log is None  # fell back, and nats-py created the stream
        await first.create(web("default"))
    async with await LiteRegistry.connect(fresh_server.url) as second:
        assert second.log is not None
        assert (await second.get("default", "web")).service.ports[0].port == 80


async def test_tls_and_credential_files_fall_back_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(NeedsNatsPy):
        await LiteLog.open("tls://127.0.0.1:1")
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate")
    with pytest.raises(NeedsNatsPy):
        await LiteLog.open("nats://127.0.0.1:1", credentials=Credentials(tls_ca=ca))


async def test_user_password_and_token(tmp_path: Path) -> None:
    with NatsServer(tmp_path / "a", extra_args=["--user", "alice", "--pass", "s3cret"]) as server:
        async with await LiteRegistry.connect(
            server.url, credentials=Credentials(user="alice", password="s3cret")
        ) as lite:
            await lite.create(web("default"))
        async with await LiteRegistry.connect(
            server.url.replace("nats://", "nats://alice:s3cret@")
        ) as lite:
            assert lite.log is not None
            assert lite.actor == "alice"  # the authenticated user, as Registry records it
            assert (await lite.get("default", "web")).actor == "alice"
        with pytest.raises(NotAuthenticated, match="refused the credentials"):
            await LiteLog.open(server.url, credentials=Credentials(user="alice", password="no"))
    with NatsServer(tmp_path / "b", extra_args=["--auth", "t0ken"]) as server:
        async with await LiteRegistry.connect(
            server.url, credentials=Credentials(token="t0ken")
        ) as lite:
            await lite.create(web("default"))  # (creates the stream through nats-py)
        async with await LiteRegistry.connect(
            server.url, credentials=Credentials(token="t0ken")
        ) as lite:
            assert lite.log is not None
            await lite.get("default", "web")
        with pytest.raises(NotAuthenticated, match="refused the credentials"):
            await LiteLog.open(server.url)


async def test_refused_connection_fails_fast() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unreachable, match="connection refused"):
        await LiteLog.open("nats://127.0.0.1:1")
    assert loop.time() - started < 1


async def test_wire_client_reads_every_message_across_read_boundaries(url: str) -> None:
    """Sizes from empty to larger than one read, with and without headers, in order."""
    subject = f"wire.{uuid.uuid4().hex}"
    sizes = [0, 1, 2, 100, 65_535, 262_143, 262_144, 262_145, 700_000, *range(0, 5000, 7)]
    received: list[tuple[bytes, str | None]] = []
    done = asyncio.Event()
    client = await WireClient.connect(url)
    try:

        def on_msg(_subject: str, _reply: str, header: bytes | None, data: bytes) -> None:
            tag = None
            if header is not None:
                tag = header.decode().split("\r\n")[1].partition(": ")[2]
            received.append((data, tag))
            if len(received) == len(sizes):
                done.set()

        client.subscribe(subject, on_msg)
        await client.ping(2.0)
        nc = await nats.connect(url)
        try:
            for i, size in enumerate(sizes):
                body = bytes([i % 251]) * size
                await nc.publish(subject, body, headers={"Tag": str(i)} if i % 2 else None)
            await nc.flush()
        finally:
            await nc.close()
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await client.close()
    assert [len(data) for data, _ in received] == sizes
    for i, (data, tag) in enumerate(received):
        assert data == bytes([i % 251]) * sizes[i]
        assert tag == (str(i) if i % 2 else None)
