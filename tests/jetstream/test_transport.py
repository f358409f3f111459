"""One registry over either client: the same answers, checks and refusals.

``registry.jetstream.log.JetStreamLog`` implements the log once, over the ``Connection``
protocol; these tests run it over both clients (nats-py, and the wire client one-shot
commands use) against real servers, and check the rule that picks between them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js.api import StreamConfig

from events import Service, ServiceCreated, ServiceType, StreamSpec, encode, subject_for, utc_now
from registry.client import Registry
from registry.errors import (
    AlreadyExists,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    StreamMisconfigured,
    Unreachable,
    UnreadableHistory,
)
from registry.jetstream import CLIENT_ENV, Client, choose_client, open_log
from registry.jetstream.credentials import Credentials
from registry.jetstream.log import JetStreamLog
from registry.jetstream.natspy import NatsPyConnection
from registry.jetstream.server import NatsServer
from registry.jetstream.wire import WireConnection
from registry.log.entry import Skipped
from registry.log.port import WrongLastSequence
from registry.services.projector import rebuild
from tests.helpers import raw_nats, raw_publish, stream_last_seq
from tests.servers import PASSWORDS, tls_server

CLIENTS: list[Client] = ["nats-py", "wire"]


def web(namespace: str, name: str = "web", port: int = 80) -> Service:
    from events import Port

    return Service(
        namespace=namespace,
        name=name,
        selector={"app": name},
        ports=(Port(port=port, target_port=port),),
    )


async def connect(url: str, client: Client, **kwargs: object) -> Registry:
    registry = await Registry.connect(url, keep_reconnecting=False, client=client, **kwargs)  # type: ignore[arg-type]
    assert isinstance(registry.log, JetStreamLog)
    kind = WireConnection if client == "wire" else NatsPyConnection
    assert isinstance(registry.log.conn, kind)  # really that client
    return registry


async def test_both_clients_give_the_same_answers(url: str, ns: str) -> None:
    async with await connect(url, "nats-py") as full, await connect(url, "wire") as lite:
        created = await lite.create(web(ns))
        record = await full.get(ns, "web")
        assert (record.seq, record.event_id, record.created) == (
            created.seq,
            created.event_id,
            created.created,
        )
        assert record.service == web(ns).model_copy(
            update={"cluster_ip": created.service.cluster_ip}
        )
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
        assert [h.seq for h in await lite.history(ns, "web")] == [
            h.seq for h in await full.history(ns, "web")
        ]


operations = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.sampled_from(["a", "b", "c"])), max_size=20
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations)
async def test_random_writes_through_either_client_fold_to_what_both_list(
    url: str, ops: list[tuple[bool, bool, str]]
) -> None:
    ns = f"l-{uuid.uuid4().hex[:10]}"
    model: dict[str, int] = {}
    async with await connect(url, "nats-py") as full, await connect(url, "wire") as lite:
        for use_lite, is_create, name in ops:
            registry = lite if use_lite else full
            try:
                if is_create:
                    model[name] = (await registry.create(web(ns, name))).seq
                else:
                    await registry.delete(ns, name)
                    del model[name]
            except (AlreadyExists, NotFound):
                pass
        for registry in (lite, full):
            assert {v.service.name: v.seq for v in await registry.list(ns)} == model
            rebuilt = await rebuild(registry.log, f"skyflow.svc.{ns}.*")
            assert {k[1]: r.seq for k, r in rebuilt.projection.services.items()} == model


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_retried_append_is_not_appended_twice(url: str, ns: str, client: Client) -> None:
    async with await open_log(url, long_lived=False, client=client) as log:
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


@pytest.mark.parametrize("client", CLIENTS)
async def test_unusual_and_unreadable_events_read_the_same(
    url: str, ns: str, client: Client
) -> None:
    """Events another writer produced: lower-case enums (valid), garbage, wrong subject."""
    odd = msgpack.unpackb(
        encode(
            ServiceCreated(
                id="odd1", time=utc_now(), actor="x@h", service=Service(namespace=ns, name="odd")
            )
        )
    )
    odd["service"]["type"] = "nodeport"
    await raw_publish(url, subject_for(ns, "odd"), msgpack.packb(odd))
    good = ServiceCreated(
        id="good1", time=utc_now(), actor="x@h", service=Service(namespace=ns, name="poisoned")
    )
    await raw_publish(url, subject_for(ns, "poisoned"), encode(good))
    await raw_publish(url, subject_for(ns, "poisoned"), b"\xc1 not msgpack")
    stray = ServiceCreated(
        id="stray1", time=utc_now(), actor="x@h", service=Service(namespace=ns, name="other")
    )
    await raw_publish(url, subject_for(ns, "stray"), encode(stray))
    reported: list[Skipped] = []
    async with await connect(url, client, on_skipped=reported.append) as registry:
        assert (await registry.get(ns, "odd")).service.type is ServiceType.NODE_PORT
        assert (await registry.get(ns, "poisoned")).event_id == "good1"
        with pytest.raises(NotFound):
            await registry.get(ns, "stray")
        assert [v.service.name for v in await registry.list(ns)] == ["odd", "poisoned"]
        # no write over what this version cannot read
        with pytest.raises(UnreadableHistory, match="seq"):
            await registry.delete(ns, "poisoned")
        with pytest.raises(UnreadableHistory):
            await registry.create(web(ns, "poisoned"))
        assert (await registry.get(ns, "poisoned")).event_id == "good1"
    assert {s.subject.rpartition(".")[2] for s in reported} >= {"poisoned", "stray"}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"max_age": 3600.0}, "max_age is 3600"),
        ({"max_msgs_per_subject": 1}, "max_msgs_per_subject is 1"),
        ({"deny_delete": False}, "deny_delete is False"),
        ({"allow_direct": False}, "allow_direct is off"),
    ],
)
async def test_either_client_refuses_a_stream_that_could_lose_history(
    url: str, change: dict[str, object], problem: str, client: Client
) -> None:
    tag = uuid.uuid4().hex[:8]
    spec = StreamSpec(name=f"RISKY_{tag}", subjects=(f"risky{tag}.*.*",))
    async with await open_log(url) as good, raw_nats(url) as nc:
        config = StreamConfig.from_response(JetStreamLog(good.conn, spec, 5).stream_config())
        for key, value in change.items():
            setattr(config, key, value)
        js = nc.jetstream()
        await js.add_stream(config)
        try:
            with pytest.raises(StreamMisconfigured, match=problem):
                await open_log(url, spec=spec, client=client)
            # A one-shot command's log checks the stream before its first write instead.
            async with await open_log(url, spec=spec, long_lived=False, client=client) as lazy:
                with pytest.raises(StreamMisconfigured, match=problem):
                    await lazy.append(
                        f"risky{tag}.ns.web", b"x", msg_id=tag, expected_last_subject_seq=0
                    )
                with pytest.raises(StreamMisconfigured, match=problem):
                    async with lazy.read([f"risky{tag}.>"]):
                        pass
            # A direct get reads what the server holds now, whatever the stream's limits;
            # one nobody answers (direct gets off) is checked then, and says why.
            async with await open_log(url, spec=spec, long_lived=False, client=client) as lazy:
                if "allow_direct" in change:
                    with pytest.raises(StreamMisconfigured, match=problem):
                        await lazy.last(f"risky{tag}.ns.web")
                else:
                    assert await lazy.last(f"risky{tag}.ns.web") is None
        finally:
            await js.delete_stream(spec.name)


@pytest.mark.parametrize("client", CLIENTS)
async def test_either_client_creates_a_missing_stream(tmp_path: Path, client: Client) -> None:
    with NatsServer(tmp_path / "store") as server:
        # (A one-shot registry finds, or makes, its stream before its first write.)
        async with await connect(server.url, client) as registry:
            await registry.create(web("default"))
            assert isinstance(registry.log, JetStreamLog) and registry.log.created_stream
        async with await connect(server.url, client) as registry:
            await registry.create(web("default", "other"))
            assert isinstance(registry.log, JetStreamLog) and not registry.log.created_stream
            assert (await registry.get("default", "web")).service.ports[0].port == 80


@pytest.mark.parametrize("client", CLIENTS)
async def test_user_password_and_token(tmp_path: Path, client: Client) -> None:
    with NatsServer(tmp_path / "a", extra_args=["--user", "alice", "--pass", "s3cret"]) as server:
        alice = Credentials(user="alice", password="s3cret")
        async with await connect(server.url, client, credentials=alice) as registry:
            await registry.create(web("default"))
        in_url = server.url.replace("nats://", "nats://alice:s3cret@")
        async with await connect(in_url, client) as registry:
            assert await registry.actor() == "alice"  # the authenticated user
            assert (await registry.get("default", "web")).actor == "alice"
        wrong = Credentials(user="alice", password="wr0ng-pass")
        with pytest.raises(NotAuthenticated, match="refused the credentials") as refused:
            await connect(server.url, client, credentials=wrong)
        assert "wr0ng-pass" not in str(refused.value)
        with pytest.raises(NotAuthenticated) as refused:
            await connect(server.url.replace("nats://", "nats://alice:wr0ng-pass@"), client)
        assert "wr0ng-pass" not in str(refused.value)
    with NatsServer(tmp_path / "b", extra_args=["--auth", "t0ken"]) as server:
        async with await connect(server.url, client, credentials=Credentials(token="t0ken")) as reg:
            await reg.create(web("default"))
            await reg.get("default", "web")
        with pytest.raises(NotAuthenticated, match="refused the credentials"):
            await connect(server.url, client)


@pytest.mark.parametrize("client", CLIENTS)
async def test_refused_connection_fails_fast(client: Client) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unreachable, match="connection refused"):
        await connect("nats://127.0.0.1:1", client)
    assert loop.time() - started < 1.5


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_dead_first_url_is_passed_over(url: str, ns: str, client: Client) -> None:
    async with await connect(f"nats://127.0.0.1:1,{url}", client) as registry:
        created = await registry.create(web(ns))
        assert created.service.cluster_ip is not None
        assert (await registry.get(ns, "web")).service == created.service


def test_the_rule_picks_a_client_once_from_what_is_known_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    none = Credentials()
    creds = tmp_path / "user.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    assert choose_client("nats://a:4222", none, long_lived=False) == "wire"
    assert choose_client("nats://a:4222,tls://b:4222", none, long_lived=False) == "wire"
    assert (
        choose_client("tls://a:4222", Credentials(user="u", password="p"), long_lived=False)
        == "wire"
    )
    # What the wire client does not do goes to nats-py, before anything is sent:
    assert choose_client("nats://a:4222", none, long_lived=True) == "nats-py"  # reconnects
    assert choose_client("nats://a", Credentials(creds_file=creds), long_lived=False) == "nats-py"
    assert choose_client("ws://a:8080", none, long_lived=False) == "nats-py"
    monkeypatch.setenv(CLIENT_ENV, "nats-py")
    assert choose_client("nats://a:4222", none, long_lived=False) == "nats-py"
    monkeypatch.setenv(CLIENT_ENV, "carrier-pigeon")
    with pytest.raises(Exception, match="must be nats-py or wire"):
        choose_client("nats://a:4222", none, long_lived=False)


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_event_over_the_size_bound_is_refused_before_sending(
    url: str, ns: str, client: Client
) -> None:
    """A 1.3 MB event is bad input (64 KiB at most), not a maybe-stored write."""
    huge = Service(namespace=ns, name="huge", selector={f"k{i}": "v" * 60 for i in range(20_000)})
    before = await stream_last_seq(url)
    async with await connect(url, client) as registry:
        with pytest.raises(InvalidInput, match="bytes") as refused:
            await registry.create(huge)
        assert "at most" in str(refused.value)
    assert await stream_last_seq(url) == before


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_streams_own_size_refusal_is_reported_as_one(url: str, client: Client) -> None:
    """What a stream refuses for its size is certainly not stored: said so, not 'maybe'."""
    tag = uuid.uuid4().hex[:8]
    spec = StreamSpec(name=f"SMALL_{tag}", subjects=(f"small{tag}.*.*",))
    async with await open_log(url) as good, raw_nats(url) as nc:
        config = StreamConfig.from_response(JetStreamLog(good.conn, spec, 5).stream_config())
        config.max_msg_size = 100
        js = nc.jetstream()
        await js.add_stream(config)
        try:
            async with await open_log(url, spec=spec, long_lived=False, client=client) as log:
                with pytest.raises(InvalidInput, match="larger than the stream accepts"):
                    await log.append(
                        f"small{tag}.a.b", b"x" * 200, msg_id=tag, expected_last_subject_seq=0
                    )
                assert await log.last_sequence() == 0
        finally:
            await js.delete_stream(spec.name)


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_tls_url_never_falls_back_to_plaintext(url: str, client: Client) -> None:
    """Once, nats-py connected in plaintext to a tls:// URL's server."""
    with pytest.raises(Unreachable, match="does not offer TLS"):
        await connect(url.replace("nats://", "tls://"), client)


@pytest.mark.parametrize("client", CLIENTS)
async def test_tls_with_the_servers_ca_works_on_either_client(
    tmp_path: Path, client: Client
) -> None:
    with tls_server(tmp_path) as (server, files):
        credentials = Credentials(user="admin", password=PASSWORDS["admin"], tls_ca=files.ca)
        async with await connect(server.url, client, credentials=credentials) as registry:
            await registry.create(web("default", "secure"))
            assert (await registry.get("default", "secure")).service.name == "secure"
