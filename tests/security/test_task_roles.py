"""Who may announce tasks and who may read them (nats-server-auth.conf), each escape tried
with raw nats-py as the user that would try it: the server must refuse every one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import nats
import nats.errors
import pytest

from events import Port, Service
from events.control import ReadinessAction, ReadinessRequest, encode_control
from events.liveness import TASKS_STREAM, control_subject
from events.task import Task
from registry.client import Registry
from registry.errors import PermissionDenied
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from tests.helpers import Raw as RolesRaw
from tests.helpers import skyctl
from tests.servers import PASSWORDS, auth_server

HEARTBEAT = {"Nats-TTL": "5"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("task-roles")) as running:
        init = skyctl(
            "init",
            *("--user", "admin", "--password", PASSWORDS["admin"]),
            *("--namespace", "shop", "--namespace", "shop-staging", "--namespace", "ops"),
            url=running.url,
        )
        assert init.code == 0, init.err
        assert init.lines[2].startswith(f"stream {TASKS_STREAM} created"), init.out
        yield running


def credentials(user: str) -> Credentials:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return Credentials(user=user, password=PASSWORDS[user], inbox_prefix=inbox)


class Raw(RolesRaw):
    """A plain nats-py client as one user, collecting the server's refusals."""

    async def refused_publish(self, subject: str) -> bool:
        return await self.refused(f'publish to "{subject.lower()}"')

    async def stored(self, subject: str) -> bool:
        """Publish a heartbeat as a request: whether the stream acknowledged it."""
        try:
            reply = await self.nc.request(subject, b"x", headers=HEARTBEAT, timeout=1)
        except nats.errors.TimeoutError:
            return False
        return "seq" in json.loads(reply.data)


@pytest.fixture
async def raw(server: NatsServer) -> AsyncIterator[dict[str, Raw]]:
    """One raw client per user."""
    clients: dict[str, Raw] = {}
    for user in PASSWORDS:
        errors: list[str] = []

        async def on_error(exc: Exception, errors: list[str] = errors) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            server.url,
            user=user,
            password=PASSWORDS[user],
            inbox_prefix="_INBOX" if user == "admin" else f"_INBOX_{user}",
            error_cb=on_error,
        )
        clients[user] = Raw(user, nc, errors)
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.nc.close()


async def test_only_announcers_heartbeat_and_only_in_their_namespace(
    raw: dict[str, Raw],
) -> None:
    allowed = [
        ("shop-agent", "skyflow.task.shop.a-1.app.web"),
        ("shop-writer", "skyflow.task.shop-staging.w-1"),
        ("admin", "skyflow.task.ops.x"),
    ]
    for user, subject in allowed:
        assert await raw[user].stored(subject), (user, subject)
    refused = [
        ("viewer", "skyflow.task.shop.v-1.app.web"),
        ("shop-agent", "skyflow.task.ops.a-1.app.web"),
        ("shop-agent", "skyflow.task.shop-staging.a-1"),
        ("shop-writer", "skyflow.task.ops.w-1.app.web"),
        ("shop-agent", "skyflow.svc.shop.cart"),  # an agent changes no service
    ]
    for user, subject in refused:
        await raw[user].nc.publish(subject, b"x", headers=HEARTBEAT)
        assert await raw[user].refused_publish(subject), (user, subject)


async def test_nobody_but_admin_purges_deletes_or_reconfigures_the_liveness_stream(
    raw: dict[str, Raw],
) -> None:
    # (Roll-ups cannot be refused this way: the server turns them on with delete markers,
    # and readers read the current state again when they see one.)
    for user in ("shop-writer", "shop-agent", "viewer"):
        for api in ("PURGE", "DELETE", "UPDATE"):
            subject = f"$JS.API.STREAM.{api}.{TASKS_STREAM}"
            await raw[user].nc.publish(subject, b"{}")
            assert await raw[user].refused_publish(subject), (user, api)
        subject = f"$JS.API.STREAM.MSG.DELETE.{TASKS_STREAM}"
        await raw[user].nc.publish(subject, json.dumps({"seq": 1}).encode())
        assert await raw[user].refused_publish(subject), user
    info = await raw["admin"].nc.jetstream().stream_info(TASKS_STREAM)
    assert info.config.max_msgs_per_subject == 1 and info.config.allow_msg_ttl


async def test_an_agent_announces_and_resolves_and_a_viewer_only_reads(server: NatsServer) -> None:
    async with await Registry.connect(
        server.url, credentials=credentials("admin"), keep_reconnecting=False
    ) as admin:
        await admin.create(
            Service(
                namespace="shop",
                name="web",
                selector={"app": "web"},
                ports=(Port(port=80, target_port=8080),),
            )
        )
    async with await Registry.connect(server.url, credentials=credentials("shop-agent")) as agent:
        task = Task(namespace="shop", name="agent-1", labels={"app": "web"}, address="10.9.0.1")
        async with agent.resolver() as resolver, agent.announce(task, ttl=5):
            await resolver.endpoints("shop/web")
            for _ in range(100):
                known = resolver.known("shop/web")
                if known is not None and known.total:
                    break
                await asyncio.sleep(0.02)
            assert str(resolver.pick("shop/web", port=80)) == "10.9.0.1:8080"
            elsewhere = Task(namespace="ops", name="agent-2", address="10.9.0.2")
            with pytest.raises(PermissionDenied, match=r"skyflow\.task\.ops\.agent-2"):
                async with agent.announce(elsewhere, ttl=5):
                    pass
            viewer = [
                "--user",
                "viewer",
                "--password",
                PASSWORDS["viewer"],
                "--inbox-prefix",
                "_INBOX_viewer",
            ]
            got = await asyncio.to_thread(
                skyctl, "get", "endpoints", "web", "-n", "shop", *viewer, url=server.url
            )
            assert got.code == 0 and "10.9.0.1:8080" in got.out, got.err
            denied = await asyncio.to_thread(
                skyctl,
                "announce",
                "task",
                "v-1",
                "-n",
                "shop",
                "--address",
                "10.9.0.3",
                *viewer,
                url=server.url,
            )
            assert denied.code == 3 and denied.err.count("\n") == 1, denied.err
            assert "permission denied" in denied.err and "skyflow.task.shop.v-1" in denied.err


async def test_only_the_namespaces_announcers_and_admins_change_a_tasks_readiness(
    server: NatsServer, raw: dict[str, Raw]
) -> None:
    """``skyctl task drain`` is a request on ``skyflow.control.<ns>.<name>``: the server
    lets a namespace's announcers and admins send it, and nobody else, whatever they send.
    """
    ops_task = Task(namespace="ops", name="ops-1", labels={"app": "db"}, address="10.9.1.1")
    shop_task = Task(namespace="shop", name="shop-1", labels={"app": "web"}, address="10.9.1.2")
    async with (
        await Registry.connect(server.url, credentials=credentials("admin")) as admin,
        await Registry.connect(server.url, credentials=credentials("shop-writer")) as writer,
        await Registry.connect(server.url, credentials=credentials("shop-agent")) as agent,
        admin.announce(ops_task, ttl=30) as ops_keeper,
        writer.announce(shop_task, ttl=30) as shop_keeper,
    ):
        hijack = encode_control(
            ReadinessRequest(action=ReadinessAction.DRAIN, reason="hijack", by="shop-agent")
        )
        subject = control_subject("ops", "ops-1")
        shop_agent = raw["shop-agent"]
        await shop_agent.nc.publish(subject, hijack)
        assert await shop_agent.refused_publish(subject)
        shop_agent.errors.clear()
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await shop_agent.nc.request(subject, hijack, timeout=1)
        assert await shop_agent.refused_publish(subject)
        await shop_agent.nc.subscribe("skyflow.control.ops.>")
        assert await shop_agent.refused('subscription to "skyflow.control.ops.>"')
        viewer = raw["viewer"]
        for target in (control_subject("shop", "shop-1"), "skyflow.control.shop.*"):
            await viewer.nc.publish(target, hijack)
            assert await viewer.refused_publish(target), target
        # The library as the agent is refused too, at once and naming the subject.
        with pytest.raises(PermissionDenied, match=r"skyflow\.control\.ops\.ops-1"):
            await agent.set_readiness("ops", "ops-1", ReadinessAction.DRAIN, "hijack")
        # ...and so is skyctl as the agent (one line, exit 3). In a thread: the tasks'
        # announcers answer on this test's event loop.
        as_agent = [
            *("--user", "shop-agent", "--password", PASSWORDS["shop-agent"]),
            *("--inbox-prefix", "_INBOX_shop-agent"),
        ]
        denied = await asyncio.to_thread(
            skyctl, "task", "drain", "ops-1", "-n", "ops", *as_agent, url=server.url
        )
        assert denied.code == 3 and denied.err.count("\n") == 1, denied.err
        assert "permission denied" in denied.err and "skyflow.control.ops.ops-1" in denied.err

        # Read back from the server, not from the keeper: nothing reached the announcer.
        (ops_now,) = await admin.tasks("ops")
        assert (ops_now.name, ops_now.ready, ops_now.draining) == ("ops-1", True, False)
        assert ops_keeper.task.ready and ops_keeper.readiness.drained is None

        # The agent announces in shop, so it may drain shop's tasks, whoever announced them.
        drained = await agent.set_readiness("shop", "shop-1", ReadinessAction.DRAIN, "move")
        assert drained.draining and not drained.ready
        assert drained.reason is not None and "move" in drained.reason
        assert "shop-agent" in drained.reason  # who asked, as the asker says
        (shop_now,) = await writer.tasks("shop")
        assert shop_now.draining and not shop_now.ready
        assert shop_keeper.task.draining
        shown = await asyncio.to_thread(
            skyctl, "task", "ready", "shop-1", "-n", "shop", *as_agent, url=server.url
        )
        assert shown.code == 0 and shown.out == "task/shop-1 ready\n", shown.err

        # The admin may change any namespace's tasks.
        for namespace, name in (("ops", "ops-1"), ("shop", "shop-1")):
            task = await admin.set_readiness(namespace, name, ReadinessAction.DRAIN, "by admin")
            assert task.draining, (namespace, name)
            (now,) = await admin.tasks(namespace)
            assert now.draining and not now.ready, (namespace, name)
