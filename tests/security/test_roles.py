"""Findings about checkpoints and roles, each tried with raw nats-py as the user
that found it, against nats-server-auth.conf: the server must refuse every one."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig

from events import (
    STREAM_NAME,
    AddressKind,
    AddressReleased,
    Holder,
    Service,
    encode,
    new_event_id,
    utc_now,
)
from registry.client import Registry
from registry.errors import AddressTaken, PermissionDenied, ServerError
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from tests.helpers import Raw, skyctl
from tests.servers import PASSWORDS, auth_server

BUCKET = "SKYFLOW_SUBSCRIPTIONS"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("roles")) as running:
        init = skyctl(
            "init",
            *("--user", "admin", "--password", PASSWORDS["admin"]),
            *("--namespace", "shop", "--namespace", "shop-staging", "--namespace", "ops"),
            url=running.url,
        )
        assert init.code == 0, init.err
        yield running


@pytest.fixture
async def raw(server: NatsServer, request: pytest.FixtureRequest) -> AsyncIterator[Raw]:
    user: str = request.param
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        server.url,
        user=user,
        password=PASSWORDS[user],
        inbox_prefix="_INBOX" if user == "admin" else f"_INBOX_{user}",
        error_cb=on_error,
    )
    try:
        yield Raw(user, nc, errors)
    finally:
        await nc.close()


def registry_as(server: NatsServer, user: str) -> Credentials:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return Credentials(user=user, password=PASSWORDS[user], inbox_prefix=inbox)


@pytest.mark.parametrize("raw", ["shop-writer"], indirect=True)
async def test_a_writer_cannot_roll_up_or_purge_the_checkpoints(raw: Raw) -> None:
    js = raw.nc.jetstream()
    with pytest.raises(nats.js.errors.Error, match="rollup"):
        await js.publish(
            f"$KV.{BUCKET}.shop-writer.x", b"{}", headers={"Nats-Rollup": "all"}, timeout=2
        )
    with pytest.raises((nats.errors.Error, nats.js.errors.Error)):
        await js.purge_stream(f"KV_{BUCKET}")


@pytest.mark.parametrize("raw", ["shop-writer"], indirect=True)
async def test_a_writer_cannot_read_or_write_anyone_elses_checkpoint(
    server: NatsServer, raw: Raw
) -> None:
    async with (
        await Registry.connect(
            server.url, credentials=registry_as(server, "admin"), keep_reconnecting=False
        ) as admin,
        admin.subscribe(durable="billing", start="beginning") as sub,
    ):
        await sub.ack(1)
    await raw.nc.publish(f"$KV.{BUCKET}.admin.billing", json.dumps({"seq": 999999}).encode())
    assert await raw.refused(f'publish to "$kv.{BUCKET.lower()}.admin.billing"')
    with pytest.raises(nats.errors.TimeoutError):
        await raw.nc.request(
            f"$JS.API.DIRECT.GET.KV_{BUCKET}.$KV.{BUCKET}.admin.billing", b"", timeout=1
        )
    assert await raw.refused("publish to")
    # Its own checkpoints it may keep.
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "shop-writer"), keep_reconnecting=False
    ) as writer:
        async with writer.subscribe("shop", durable="billing", start="beginning") as sub:
            await sub.ack(1)
        checkpoint = await (await writer.log.checkpoints()).load("billing")
        assert checkpoint is not None and checkpoint.seq == 1


@pytest.mark.parametrize("raw", ["shop-writer"], indirect=True)
async def test_a_corrupt_checkpoint_is_one_line_naming_the_subscriber(
    server: NatsServer, raw: Raw
) -> None:
    await raw.nc.jetstream().publish(f"$KV.{BUCKET}.shop-writer.broken", b"\xff\xfegarbage")
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "shop-writer"), keep_reconnecting=False
    ) as writer:
        with pytest.raises(ServerError, match="subscription 'broken': its checkpoint") as bad:
            async with writer.subscribe("shop", durable="broken"):
                pass
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize("raw", ["admin"], indirect=True)
async def test_a_checkpoint_past_the_end_of_the_log_is_refused_not_skipped_to(
    server: NatsServer, raw: Raw
) -> None:
    value = json.dumps({"seq": 999_999, "filter": "skyflow.svc.*.*"}).encode()
    await raw.nc.jetstream().publish(f"$KV.{BUCKET}.admin.ahead", value)
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "admin"), keep_reconnecting=False
    ) as admin:
        with pytest.raises(ServerError, match=r"'ahead': its checkpoint says 999999, past the"):
            async with admin.subscribe(durable="ahead"):
                pass


@pytest.mark.parametrize("raw", ["viewer"], indirect=True)
async def test_a_viewer_makes_no_durable_consumer_and_deletes_none(
    server: NatsServer, raw: Raw, tmp_path: Path
) -> None:
    js = raw.nc.jetstream()
    with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
        await js.add_consumer(STREAM_NAME, ConsumerConfig(durable_name="mine"), timeout=1)
    assert await raw.refused("permissions violation for publish")
    raw.errors.clear()
    # Someone else's consumer (admin's, made with raw nats-py) stays.
    admin = await nats.connect(server.url, user="admin", password=PASSWORDS["admin"])
    try:
        await admin.jetstream().add_consumer(STREAM_NAME, ConsumerConfig(durable_name="adm"))
        await raw.nc.publish(f"$JS.API.CONSUMER.DELETE.{STREAM_NAME}.adm")
        assert await raw.refused(f'publish to "$js.api.consumer.delete.{STREAM_NAME.lower()}')
        assert (await admin.jetstream().consumer_info(STREAM_NAME, "adm")).name == "adm"
        await admin.jetstream().delete_consumer(STREAM_NAME, "adm")
    finally:
        await admin.close()
    # And a durable subscription, which needs a checkpoint, is one line of refusal.
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "viewer"), keep_reconnecting=False
    ) as viewer:
        with pytest.raises(PermissionDenied):
            async with viewer.subscribe(durable="watching"):
                pass


@pytest.mark.parametrize("raw", ["viewer", "shop-writer"], indirect=True)
async def test_no_one_reads_anyone_elses_replies(raw: Raw) -> None:
    others = ["_INBOX.>", "_INBOX_admin.>", "_INBOX_viewer.x", "_INBOX_shop-writer.x"]
    for inbox in [i for i in others if not i.startswith(f"_INBOX_{raw.user}.")]:
        raw.errors.clear()
        await raw.nc.subscribe(inbox)
        assert await raw.refused("subscription to"), inbox


def test_a_user_without_its_inbox_prefix_gets_its_own(server: NatsServer) -> None:
    # The server refuses the viewer replies on _INBOX at once; skyctl then uses the
    # viewer's own prefix, _INBOX_viewer, by itself.
    result = skyctl(
        "get", "svc", "--user", "viewer", "--password", PASSWORDS["viewer"], url=server.url
    )
    assert result.code == 0, result.err


def test_a_user_with_a_refused_inbox_prefix_is_told_which_option_to_set(
    server: NatsServer,
) -> None:
    # A prefix someone chose is never replaced: the refusal is reported, at once.
    started = time.monotonic()
    result = skyctl(
        "get", "svc", "--user", "viewer", "--password", PASSWORDS["viewer"],
        "--inbox-prefix", "_INBOX", url=server.url,
    )  # fmt: skip
    assert result.code == 3 and result.err.count("\n") == 1, result.err
    assert "receive replies" in result.err and "--inbox-prefix" in result.err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("raw", ["viewer"], indirect=True)
async def test_a_viewer_writes_no_address_record(raw: Raw) -> None:
    for subject in ("skyflow.addr.ip.10-96-0-1", "skyflow.addr.nodeport.30080"):
        await raw.nc.publish(subject, b"\x80")
        assert await raw.refused(f'publish to "{subject}"'), subject


@pytest.mark.parametrize("raw", ["shop-writer"], indirect=True)
async def test_a_writer_sets_no_ranges_and_its_forged_release_frees_nothing(
    server: NatsServer, raw: Raw
) -> None:
    """A writer may publish address records (its batches carry them), so it can
    forge one; the ranges are the admin's alone."""
    await raw.nc.publish("skyflow.config.ranges", b"\x80")
    assert await raw.refused('publish to "skyflow.config.ranges"')
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "admin"), keep_reconnecting=False
    ) as admin:
        victim = await admin.create(Service(namespace="billing", name="victim"))
    ip = victim.service.cluster_ip
    assert ip is not None
    subject = f"skyflow.addr.ip.{ip.replace('.', '-')}"
    forged = AddressReleased(
        id=new_event_id(),
        time=utc_now(),
        actor="shop-writer",
        kind=AddressKind.CLUSTER_IP,
        address=ip,
        holder=Holder(namespace="billing", name="victim", uid=victim.event_id),
    )
    ack = await raw.nc.jetstream().publish(subject, encode(forged))
    assert ack.seq > victim.seq  # stored: writers may publish address records
    async with await Registry.connect(
        server.url, credentials=registry_as(server, "shop-writer"), keep_reconnecting=False
    ) as writer:
        mine = await writer.create(Service(namespace="shop", name="mine"))
        assert mine.service.cluster_ip not in (None, ip)
        with pytest.raises(AddressTaken, match="held by service billing/victim"):
            await writer.create(Service(namespace="shop", name="thief", cluster_ip=ip))
