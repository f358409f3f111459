"""The liveness stream: what the server does that discovery is built on (measured on the
bundled nats-server), and the check that refuses a stream which would keep the dead live."""

from __future__ import annotations

import asyncio
import json
import time

from events.liveness import TASKS_STREAM, TasksSpec, intake_stream
from events.task import Task
from registry.client import Registry
from registry.jetstream.liveness import JetStreamLiveness
from registry.jetstream.server import NatsServer
from tests.helpers import raw_nats, skyctl


async def test_the_server_expires_heartbeats_and_says_so(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        # The registry's own stream, and the intake it sources for namespace "facts".
        liveness = await registry.log.liveness()
        assert isinstance(liveness, JetStreamLiveness)
        await liveness.ensure_intake("facts")
    async with raw_nats(url) as nc:
        js = nc.jetstream()
        info = await js.stream_info(TASKS_STREAM)
        # Markers on turn roll-ups and purges on, whatever was asked (nats-server 2.15):
        # which is why nobody publishes into the liveness stream itself.
        assert info.config.allow_rollup_hdrs and not info.config.deny_purge
        intake = await js.stream_info(intake_stream("facts"))
        assert not intake.config.allow_rollup_hdrs and intake.config.deny_purge
        refused = await nc.request("skyflow.task.facts.x", b"", headers={"Nats-Rollup": "all"})
        assert json.loads(refused.data)["error"]["err_code"] == 10111  # rollup not permitted
        arrived: dict[str, tuple[float, dict[str, str]]] = {}

        async def on_msg(msg: object) -> None:
            subject, headers = msg.subject, msg.headers or {}  # type: ignore[attr-defined]
            if "Nats-Marker-Reason" in headers:
                arrived[subject] = (time.monotonic(), headers)

        await js.subscribe("skyflow.task.>", cb=on_msg, stream=TASKS_STREAM)
        sent = time.monotonic()
        await js.publish("skyflow.task.facts.one", b"x", headers={"Nats-TTL": "2"})
        # A renewed subject gets no marker until its last message expires.
        await js.publish("skyflow.task.facts.two", b"x", headers={"Nats-TTL": "2"})
        await asyncio.sleep(1.0)
        renewed = time.monotonic()
        await js.publish("skyflow.task.facts.two", b"x", headers={"Nats-TTL": "2"})
        while len(arrived) < 2:
            assert time.monotonic() - sent < 6, arrived
            await asyncio.sleep(0.02)
        one, headers = arrived["skyflow.task.facts.one"]
        assert headers["Nats-Marker-Reason"] == "MaxAge"
        # The TTL (counted from the copy's arrival in the liveness stream), then the
        # server's 250 ms timer.
        assert 2.0 <= one - sent <= 3.5, one - sent
        assert 2.0 <= arrived["skyflow.task.facts.two"][0] - renewed <= 3.5


def test_a_stream_that_would_keep_the_dead_live_is_refused(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    config = {**TasksSpec().config(), "max_msgs_per_subject": -1}

    async def create() -> None:
        async with raw_nats(url) as nc:
            reply = await nc.request(
                f"$JS.API.STREAM.CREATE.{TASKS_STREAM}", json.dumps(config).encode()
            )
            assert "error" not in json.loads(reply.data)

    asyncio.run(create())
    assert skyctl("create", "svc", "first", url=url).code == 0  # the registry itself
    got = skyctl("get", "tasks", url=url)
    assert got.code == 3 and got.err.count("\n") == 1, got.err
    assert "max_msgs_per_subject is -1, must be 1" in got.err
    assert "stretches a short TTL" in got.err


def test_a_liveness_stream_announcers_write_is_made_again_by_init(
    fresh_server: NatsServer,
) -> None:
    """A liveness stream from before intakes (announcers wrote it, so any of them could
    roll it up) is refused with the fix; ``skyctl init`` makes it again, fed by intakes."""
    url = fresh_server.url
    old = {**TasksSpec().config(), "subjects": ["skyflow.task.>"]}

    async def create() -> None:
        async with raw_nats(url) as nc:
            reply = await nc.request(
                f"$JS.API.STREAM.CREATE.{TASKS_STREAM}", json.dumps(old).encode()
            )
            assert "error" not in json.loads(reply.data)

    asyncio.run(create())
    assert skyctl("create", "svc", "first", url=url).code == 0  # the registry itself
    refused = skyctl("get", "tasks", url=url)
    assert refused.code == 3 and refused.err.count("\n") == 1, refused.err
    assert "can roll up every namespace's tasks" in refused.err and "skyctl init" in refused.err
    init = skyctl("init", "--namespace", "shop", url=url)
    assert init.code == 0, init.err
    assert f"stream {TASKS_STREAM} recreated" in init.out, init.out
    assert f"stream {intake_stream('shop')} created" in init.out, init.out

    async def announce_and_list() -> list[str]:
        async with await Registry.connect(url) as registry:
            task = Task(namespace="shop", name="t1", address="10.0.0.1")
            async with registry.announce(task, ttl=30):
                return [t.name for t in await registry.tasks("shop")]

    assert asyncio.run(announce_and_list()) == ["t1"]
