"""Who may read and who may write the membership history (nats-server-auth.conf): every
role reads who served when; only the recorder (admin) writes it. Each forgery is tried
with raw nats-py as the user that would try it, and the server must refuse it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from events import Service
from events.membership import MEMBERSHIP_STREAM, TaskJoined, encode_membership, member_subject
from events.stamps import utc_now
from events.task import Task
from registry.client import Registry
from registry.discovery.recorder import Recorder
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from registry.services.when import AtTime
from tests.helpers import raw_as, skyctl
from tests.servers import PASSWORDS, auth_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("membership-roles")) as running:
        init = skyctl(
            "init",
            *("--user", "admin", "--password", PASSWORDS["admin"]),
            *("--namespace", "shop"),
            url=running.url,
        )
        assert init.code == 0, init.err
        yield running


def credentials(user: str) -> Credentials:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return Credentials(user=user, password=PASSWORDS[user], inbox_prefix=inbox)


async def test_every_role_reads_who_served_and_only_the_recorder_writes(
    server: NatsServer,
) -> None:
    url = server.url
    async with await Registry.connect(url, credentials=credentials("admin")) as admin:
        await admin.create(Service(namespace="shop", name="web", selector={"app": "web"}))
        recorder = Recorder(admin.log)
        recording = asyncio.create_task(recorder.run())
        try:
            await asyncio.wait_for(recorder.caught_up.wait(), 30)
            task = Task(namespace="shop", name="w-1", labels={"app": "web"}, address="10.9.1.1")
            async with (
                await Registry.connect(url, credentials=credentials("shop-writer")) as writer,
                writer.announce(task, ttl=30),
            ):
                deadline = time.monotonic() + 30
                while recorder.stats.written < 1:
                    assert time.monotonic() < deadline, "the join was never recorded"
                    await asyncio.sleep(0.05)
                moment = datetime.now(UTC)
                for user in ("viewer", "shop-writer", "shop-agent"):
                    async with await Registry.connect(url, credentials=credentials(user)) as who:
                        served = await who.served_at("shop", "web", AtTime(moment))
                        assert [a.task for a in served.endpoints.addresses] == ["w-1"], user
                got = await asyncio.to_thread(
                    skyctl,
                    *("get", "endpoints", "web", "-n", "shop", "--at", moment.isoformat()),
                    *("--user", "viewer", "--password", PASSWORDS["viewer"]),
                    *("--inbox-prefix", "_INBOX_viewer"),
                    url=url,
                )
                assert got.code == 0 and "10.9.1.1" in got.out, got.err
        finally:
            recording.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recording
    # Forging history: a transition written by anyone but the recorder is refused.
    forged = TaskJoined(
        at=utc_now(),
        source_seq=1,
        instance="forged",
        since=utc_now(),
        task=Task(namespace="shop", name="ghost", labels={"app": "web"}, address="10.9.9.9"),
    )
    subject = member_subject("shop", "ghost")
    for user in ("shop-writer", "shop-agent", "viewer", "controller"):
        async with raw_as(url, user, PASSWORDS[user]) as raw:
            await raw.nc.publish(subject, encode_membership(forged))
            assert await raw.refused(f'publish to "{subject}"'), user
            for api in ("PURGE", "DELETE", "UPDATE"):
                refused = f"$JS.API.STREAM.{api}.{MEMBERSHIP_STREAM}"
                await raw.nc.publish(refused, b"{}")
                assert await raw.refused(f'publish to "{refused.lower()}"'), (user, api)
    async with await Registry.connect(url, credentials=credentials("viewer")) as viewer:
        served = await viewer.served_at("shop", "web", AtTime(datetime.now(UTC)))
        assert "ghost" not in [a.task for a in served.endpoints.addresses]
