"""One tenant cannot take discovery away from another: each attack tried with raw nats-py
as the role that would try it (nats-server-auth.conf), on a real server, while a victim
namespace ("other", announced by admin) is watched for any change.

The shop-agent may publish anything on ``skyflow.task.shop.>``: roll-ups, ``Nats-TTL:
never``, as many subjects as it likes. Those land in shop's intake stream, which refuses
roll-ups and purges and holds a bounded number of subjects; the liveness stream that
readers read has no subject the agent may publish on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from events import Port, Service
from events.liveness import TASKS_STREAM, intake_stream
from events.task import Task
from registry.client import Registry
from registry.discovery.resolver import Resolver
from registry.jetstream.credentials import Credentials
from registry.jetstream.liveness import JetStreamLiveness
from registry.jetstream.server import NatsServer
from tests.helpers import Raw, raw_as, skyctl
from tests.servers import PASSWORDS, auth_server

SHOP_SUBJECTS = 40  # shop's intake bound in this module (the default is 200,000)


def credentials(user: str) -> Credentials:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return Credentials(user=user, password=PASSWORDS[user], inbox_prefix=inbox)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("tenants")) as running:
        init = skyctl(
            "init",
            *("--user", "admin", "--password", PASSWORDS["admin"]),
            *("--namespace", "other"),
            url=running.url,
        )
        assert init.code == 0, init.err

        async def bounded_shop() -> None:
            async with await Registry.connect(running.url, credentials=credentials("admin")) as r:
                liveness = await r.log.liveness()
                assert isinstance(liveness, JetStreamLiveness)
                await liveness.ensure_intake("shop", max_subjects=SHOP_SUBJECTS)

        asyncio.run(bounded_shop())
        yield running


@pytest.fixture
async def agent(server: NatsServer) -> AsyncIterator[Raw]:
    async with raw_as(server.url, "shop-agent", PASSWORDS["shop-agent"]) as raw:
        yield raw


def victim_service() -> Service:
    return Service(
        namespace="other",
        name="api",
        selector={"app": "api"},
        ports=(Port(port=80, target_port=8080),),
    )


async def answer(nc: NatsClient, subject: str, headers: dict[str, str]) -> dict[str, Any]:
    reply = await nc.request(subject, b"\x80", headers=headers, timeout=5)
    parsed = json.loads(reply.data)
    assert isinstance(parsed, dict)
    return parsed


def err_code(ack: dict[str, Any]) -> object:
    error = ack.get("error")
    return error.get("err_code") if isinstance(error, dict) else None


async def test_a_shop_agent_cannot_empty_fill_or_delay_another_namespaces_tasks(
    server: NatsServer, agent: Raw
) -> None:
    admin_creds = credentials("admin")
    async with (
        await Registry.connect(server.url, credentials=admin_creds) as admin,
        admin.resolver() as resolver,
    ):
        await admin.create(victim_service())
        victim = Task(namespace="other", name="api-1", labels={"app": "api"}, address="10.7.0.1")
        async with admin.announce(victim, ttl=30):
            assert (await resolver.endpoints("other/api")).total == 1
            seen: list[int] = []
            watching = asyncio.create_task(_watch(resolver, seen))
            try:
                await _attack(agent)
                await asyncio.sleep(1.0)  # anything the attack did has reached the Resolver
            finally:
                watching.cancel()
            assert seen and set(seen) == {1}, seen  # never empty, not even for a moment
            got = await asyncio.to_thread(
                skyctl,
                "get",
                "endpoints",
                "api",
                "-n",
                "other",
                "--user",
                "viewer",
                "--password",
                PASSWORDS["viewer"],
                url=server.url,
                env={"NATS_INBOX_PREFIX": "_INBOX_viewer"},
            )
            assert got.code == 0 and got.lines[1].split()[1] == "10.7.0.1:8080", got.out + got.err
            # The heartbeats that never expire are not tasks to anyone: skipped, reported,
            # in a bounded number of lines.
            shop = await admin.tasks("shop")
            assert [t.name for t in shop] == [], shop
            listed = await asyncio.to_thread(
                skyctl,
                *("get", "tasks", "-n", "shop", "--user", "viewer"),
                *("--password", PASSWORDS["viewer"]),
                url=server.url,
                env={"NATS_INBOX_PREFIX": "_INBOX_viewer"},
            )
            assert listed.code == 0, listed.err
            warnings = listed.err.splitlines()
            assert len(warnings) <= 22 and "the rest are not shown" in listed.err, warnings
    info = await admin_info(server, intake_stream("shop"))
    assert info["state"]["messages"] == SHOP_SUBJECTS  # bounded by the server, in shop only


async def _watch(resolver: Resolver, seen: list[int]) -> None:
    while True:
        known = resolver.known("other/api")
        seen.append(-1 if known is None else known.total)
        await asyncio.sleep(0.01)


async def _attack(agent: Raw) -> None:
    nc = agent.nc
    # Roll-ups, of the whole stream and of a subject: refused by shop's intake.
    for rollup in ("all", "sub", "ALL"):
        got = await answer(nc, "skyflow.task.shop.x.app.api", {"Nats-Rollup": rollup})
        assert err_code(got) == 10111, got
    # Heartbeats that never expire, until shop's intake is full: then refused, in shop only.
    for i in range(SHOP_SUBJECTS):
        got = await answer(nc, f"skyflow.task.shop.n{i}.app.api", {"Nats-TTL": "never"})
        assert "seq" in got and "error" not in got, got
    over = await answer(nc, "skyflow.task.shop.over.app.api", {"Nats-TTL": "5"})
    assert err_code(over) == 10077, over
    # Renewing what it holds still works: the bound takes nothing from the namespace.
    again = await answer(nc, "skyflow.task.shop.n0.app.api", {"Nats-TTL": "never"})
    assert "seq" in again, again
    # Nothing else reaches the liveness stream or the intake: no publish, purge or delete.
    for subject in (
        TASKS_STREAM,
        "skyflow.task.other.api-1.app.api",
        f"$JS.API.STREAM.PURGE.{TASKS_STREAM}",
        f"$JS.API.STREAM.PURGE.{intake_stream('shop')}",
        f"$JS.API.STREAM.PURGE.{intake_stream('other')}",
        f"$JS.API.STREAM.UPDATE.{TASKS_STREAM}",
        f"$JS.API.STREAM.MSG.DELETE.{intake_stream('other')}",
    ):
        await nc.publish(subject, b"{}", headers={"Nats-Rollup": "all"})
        assert await agent.refused(f'publish to "{subject.lower()}"'), subject


async def admin_info(server: NatsServer, stream: str) -> dict[str, dict[str, int]]:
    nc = await nats.connect(server.url, user="admin", password=PASSWORDS["admin"])
    try:
        reply = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
        info = json.loads(reply.data)
        assert isinstance(info, dict)
        return info
    finally:
        await nc.close()


SLOTS = 16  # consumer names per user per stream in nats-server-auth.conf


async def test_no_role_keeps_a_consumer_for_ever(server: NatsServer) -> None:
    """Every consumer on the registry's streams is removed by the server after five
    minutes without interest: a viewer asking for ten years is refused."""
    nc = await nats.connect(
        server.url,
        user="viewer",
        password=PASSWORDS["viewer"],
        inbox_prefix="_INBOX_viewer",
    )
    try:
        for stream in ("SKYFLOW_SERVICES", TASKS_STREAM):
            config = {
                "name": "viewer-0",
                "deliver_subject": "_INBOX_viewer.mine",
                "ack_policy": "none",
                "inactive_threshold": 10 * 365 * 86400 * 10**9,
            }
            create = f"$JS.API.CONSUMER.CREATE.{stream}.viewer-0"
            body = {"stream_name": stream, "config": config}
            reply = await nc.request(create, json.dumps(body).encode(), timeout=5)
            assert err_code(json.loads(reply.data)) == 10153, reply.data  # exceeds the limit
            del config["inactive_threshold"]
            reply = await nc.request(create, json.dumps(body).encode(), timeout=5)
            made = json.loads(reply.data)["config"]
            assert made["inactive_threshold"] == 300 * 10**9, made
            # Its own it may delete (so a read frees its slot at once).
            reply = await nc.request(f"$JS.API.CONSUMER.DELETE.{stream}.viewer-0", b"", timeout=5)
            assert json.loads(reply.data).get("success") is True, reply.data
    finally:
        await nc.close()


async def test_a_viewer_cannot_exhaust_consumers_or_touch_anothers(server: NatsServer) -> None:
    """2,000 attempts at consumers of every kind, fired without waiting, leave the viewer
    holding its 16 slots and nothing else: admin's and a writer's reads work, an admin's
    durable consumer is neither redefined nor deleted, and the viewer's own next read
    fails with a line that says why."""
    admin = await nats.connect(server.url, user="admin", password=PASSWORDS["admin"])
    stream = "SKYFLOW_SERVICES"
    try:
        async with raw_as(server.url, "viewer", PASSWORDS["viewer"]) as raw:
            await _flood_and_read(server, admin, raw, stream)
    finally:
        for name in await _consumer_names(admin, stream):  # the viewer's slots, for later tests
            await admin.request(f"$JS.API.CONSUMER.DELETE.{stream}.{name}", b"", timeout=5)
        await admin.close()


async def _flood_and_read(server: NatsServer, admin: NatsClient, raw: Raw, stream: str) -> None:
    viewer = raw.nc
    durable = {
        "durable_name": "audit",
        "ack_policy": "explicit",
        "filter_subject": "skyflow.svc.other.*",
    }
    made = await admin.request(
        f"$JS.API.CONSUMER.CREATE.{stream}.audit",
        json.dumps({"stream_name": stream, "config": durable}).encode(),
        timeout=5,
    )
    assert "error" not in json.loads(made.data), made.data

    async def ignore(msg: Any) -> None:
        pass

    await viewer.subscribe("_INBOX_viewer.>", cb=ignore)  # every consumer stays wanted
    for i in range(2_000):
        config: dict[str, Any] = {
            "deliver_subject": f"_INBOX_viewer.flood.{i}",
            "ack_policy": "none",
            "filter_subject": "skyflow.svc.shop.*",
        }
        kind = i % 5
        if kind == 0:  # the server names it
            subject = f"$JS.API.CONSUMER.CREATE.{stream}"
        elif kind == 1:  # the request names it: the admin's, to redefine it
            subject, config["name"] = f"$JS.API.CONSUMER.CREATE.{stream}", "audit"
        elif kind == 2:  # a durable of its own choosing
            subject = f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.mine{i}"
            config["durable_name"] = f"mine{i}"
        elif kind == 3:  # its own names, again and again (create-or-update)
            name = f"viewer-{i % (2 * SLOTS)}"  # half of them not its own
            subject, config["name"] = f"$JS.API.CONSUMER.CREATE.{stream}.{name}", name
        else:  # another user's names, and the admin's by the subject
            name = "audit" if i % 2 else f"shop-writer-{i % SLOTS}"
            subject, config["name"] = f"$JS.API.CONSUMER.CREATE.{stream}.{name}", name
        body = json.dumps({"stream_name": stream, "config": config}).encode()
        await viewer.publish(subject, body, reply=f"_INBOX_viewer.answers.{i}")
    await viewer.publish(f"$JS.API.CONSUMER.DELETE.{stream}.audit", b"")
    await viewer.flush()
    await asyncio.sleep(2.0)  # the server has answered or refused them all

    names = await _consumer_names(admin, stream)
    theirs = {n for n in names if n != "audit"}
    assert theirs <= {f"viewer-{k}" for k in range(SLOTS)}, sorted(theirs)
    assert "audit" in names
    info = json.loads(
        (await admin.request(f"$JS.API.CONSUMER.INFO.{stream}.audit", timeout=5)).data
    )
    assert info["config"]["filter_subject"] == "skyflow.svc.other.*", info
    assert await raw.refused("permissions violation"), raw.errors[:3]

    # Others read on: admin, and the writer (its own slots), through the CLI.
    for user in ("admin", "shop-writer"):
        inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
        got = await asyncio.to_thread(
            skyctl,
            *("get", "endpoints", "-A", "--user", user, "--password", PASSWORDS[user]),
            url=server.url,
            env={"NATS_INBOX_PREFIX": inbox},
        )
        assert got.code == 0, (user, got.err)
    # The viewer has used up its own: one line says so, naming the stream and the bound.
    mine = await asyncio.to_thread(
        skyctl,
        *("get", "endpoints", "-A", "--user", "viewer", "--password", PASSWORDS["viewer"]),
        url=server.url,
        env={"NATS_INBOX_PREFIX": "_INBOX_viewer"},
    )
    assert mine.code != 0 and len(mine.err.splitlines()) == 1, mine.err
    assert f"all {SLOTS} reads user 'viewer' may keep open on {stream}" in mine.err, mine.err


async def _consumer_names(nc: NatsClient, stream: str) -> list[str]:
    reply = await nc.request(f"$JS.API.CONSUMER.NAMES.{stream}", b"{}", timeout=5)
    names = json.loads(reply.data).get("consumers") or []
    assert isinstance(names, list)
    return [str(n) for n in names]
