"""The secured leaf link (``cluster/sites/secured/``, docs/sites.md "Securing the leaf
link"), on real servers: the registry works through it, and a client of a site (raw
nats-py at east's client port, the worst a compromised site's clients can do) can neither
hurt the hub nor reach another site. A leaf connection without the right key is refused.

The refusals are those measured: a request the link does not carry finds no responders
at the site (the site's server is told the hub's permissions and has no route for it);
one it carries whose answer may not come back times out; a plain message the link does
not carry never reaches a subscriber at the hub.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from events.task import Task
from registry.client import Registry
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from registry.sites.links import reaches, session
from tests.helpers import running, skyctl, until
from tests.sitesetup import (
    ADMIN_PASSWORD,
    DOCUMENTED,
    SECURED_DIR,
    Running,
    hub_and_sites,
    leaf_keys,
    render_configs,
    site_config,
    site_env,
)

ROOT = Path(__file__).resolve().parents[2]
NS = "shop"
ADMIN = Credentials(user="admin", password=ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Path]]:
    root = tmp_path_factory.mktemp("leafauth")
    with hub_and_sites(root, secured=True) as up:
        assert up.west is not None and up.hub_env is not None
        # Anonymous clients of the hub are refused: everything at the hub is the admin's.
        assert skyctl("get", "services", "-A", url=up.hub).code != 0
        assert skyctl("init", "--namespace", NS, url=up.hub, env=up.hub_env).code == 0
        for name, url in (("east", up.east), ("west", up.west)):
            started = time.monotonic()
            made = skyctl(
                "site", "init", name, "--hub", up.hub, "--lease", "2s", url=url, env=up.hub_env
            )
            assert made.code == 0, made.err
            # The site reached the hub's JetStream across the secured link at once (its
            # probe answered), rather than waiting out LINK_WAIT_S and warning.
            assert "does not reach" not in made.err, made.err
            assert time.monotonic() - started < 5
        yield up, root


async def as_admin(up: Running) -> NatsClient:
    return await nats.connect(up.hub, user="admin", password=ADMIN_PASSWORD)


async def hub_info(up: Running, stream: str) -> dict[str, Any]:
    admin = await as_admin(up)
    try:
        reply = await admin.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
    finally:
        await admin.close()
    info = json.loads(reply.data)
    assert "error" not in info, info
    return dict(info)


def states(up: Running) -> dict[str, str]:
    result = skyctl("get", "sites", "-o", "json", url=up.hub, env=up.hub_env)
    assert result.code == 0, result.err
    return {i["metadata"]["name"]: i["status"]["state"] for i in json.loads(result.out)["items"]}


def test_the_documented_secured_configs_are_the_tested_ones() -> None:
    for name, text in render_configs(DOCUMENTED, secured=True).items():
        assert (ROOT / "cluster" / "sites" / SECURED_DIR / name).read_text() == text, name
    # No key in any of them (a seed is "SU...", a public key "U...", 56 base-32
    # characters): keys and passwords come from the environment.
    for text in render_configs(DOCUMENTED, secured=True).values():
        assert not re.search(r"\bS?U[A-Z2-7]{55,}\b", text)
        assert ADMIN_PASSWORD not in text


async def test_the_registry_works_through_the_secured_link(
    sites: tuple[Running, Path],
) -> None:
    up, _ = sites
    assert up.hub_env is not None
    created = skyctl(
        "create", "service", "web", "-n", NS, "-s", "app=web", "-p", "80:8080",
        url=up.hub, env=up.hub_env,
    )  # fmt: skip
    assert created.code == 0, created.err

    async def mirrored() -> bool:
        return skyctl("get", "svc", "web", "-n", NS, url=up.east).code == 0

    await until("east's mirror holds the hub's service", mirrored, timeout=15)
    task = Task(namespace=NS, name="web-east-1", labels={"app": "web"}, address="10.7.0.1")
    async with (
        running("record", url=up.east, ready="record:"),
        await Registry.connect(up.east) as at_east,
        at_east.announce(task, ttl=5),
    ):

        async def hub_knows_east() -> bool:
            found = skyctl(
                "get", "endpoints", "web", "-n", NS, "--site", "east", url=up.hub, env=up.hub_env
            )
            return found.code == 0 and "10.7.0.1:8080" in found.out and not found.err

        await until("the hub has east's endpoints", hub_knows_east, timeout=15)

    async def both_live() -> bool:
        return states(up) == {"east": "live", "west": "live"}

    await until("both sites live at the hub", both_live, timeout=15)
    # The link probes cross both ways (skyctl site init at a site, site watch at the hub),
    # answered on their own subjects; a domain nobody serves is not reached.
    async with session(up.hub, ADMIN) as at_hub:
        assert await reaches(at_hub, "east", wait_s=5)
        assert await reaches(at_hub, "west", wait_s=5)
        assert not await reaches(at_hub, "north", wait_s=0)
    async with session(up.east) as at_east_session:
        assert await reaches(at_east_session, "hub", wait_s=5)
        assert not await reaches(at_east_session, "west", wait_s=0)


# Requests of the hub's and west's JetStream APIs from a client of east: none may cross.
REFUSED = [
    ("$JS.hub.API.STREAM.DELETE.SKYFLOW_SERVICES", b""),
    ("$JS.hub.API.STREAM.PURGE.SKYFLOW_SERVICES", b""),
    ("$JS.hub.API.STREAM.UPDATE.SKYFLOW_SERVICES", b'{"name": "SKYFLOW_SERVICES"}'),
    ("$JS.hub.API.STREAM.DELETE.SKYFLOW_SITE_TASKS_west", b""),
    ("$JS.hub.API.STREAM.NAMES", b"{}"),
    ("$JS.hub.API.STREAM.INFO.SKYFLOW_SERVICES", b""),
    ("$JS.hub.API.STREAM.INFO.SKYFLOW_SITE_MEMBERSHIP_west", b""),
    ("$JS.hub.API.DIRECT.GET.SKYFLOW_SITE_MEMBERSHIP_west", b'{"seq": 1}'),
    ("$JS.hub.API.DIRECT.GET.SKYFLOW_SERVICES", b'{"seq": 1}'),
    ("$JS.hub.API.CONSUMER.CREATE.SKYFLOW_SERVICES", b'{"stream_name": "SKYFLOW_SERVICES"}'),
    ("$JS.hub.API.CONSUMER.CREATE.SKYFLOW_SITE_TASKS_west", b"{}"),
    ("$JS.hub.API.CONSUMER.DELETE.SKYFLOW_SERVICES.controller-0", b""),
    ("$JS.hub.API.ACCOUNT.PURGE", b""),
    ("$JS.west.API.INFO", b""),
    ("$JS.west.API.STREAM.DELETE.SKYFLOW_TASKS", b""),
    ("$JS.west.API.STREAM.INFO.SKYFLOW_MEMBERSHIP", b""),
]


async def test_a_client_of_a_site_cannot_touch_the_hubs_or_another_sites_streams(
    sites: tuple[Running, Path],
) -> None:
    up, _ = sites
    admin = await as_admin(up)
    # A durable consumer of the hub's log, as a reader at the hub keeps one.
    made = await admin.request(
        "$JS.API.CONSUMER.CREATE.SKYFLOW_SERVICES.controller-0",
        json.dumps(
            {
                "stream_name": "SKYFLOW_SERVICES",
                "config": {
                    "name": "controller-0", "durable_name": "controller-0",
                    "ack_policy": "explicit", "filter_subject": "skyflow.svc.>",
                },
            }
        ).encode(),
        timeout=5,
    )  # fmt: skip
    assert "error" not in json.loads(made.data)
    await admin.close()
    before = {
        name: (await hub_info(up, name))["state"]
        for name in ("SKYFLOW_SERVICES", "SKYFLOW_SITE_TASKS_west", "SKYFLOW_SITE_MEMBERSHIP_west")
    }
    attacker = await nats.connect(up.east)
    try:
        for subject, body in REFUSED:
            with pytest.raises(NoRespondersError):
                await attacker.request(subject, body, timeout=2)
        # Redefining the hub's durable by name (what the unfiltered mirror subject let a
        # site do, measured), sent with a reply subject the link does carry back.
        answers: list[tuple[str, bytes]] = []

        async def heard(msg: Any) -> None:
            answers.append(((msg.headers or {}).get("Status", ""), msg.data))

        await attacker.subscribe("_SKYFLOW_LINK.hub.attack", cb=heard)
        for subject in (
            "$JS.hub.API.CONSUMER.CREATE.SKYFLOW_SERVICES",
            "$JS.hub.API.CONSUMER.CREATE.SKYFLOW_SERVICES.controller-0",
            "$JS.hub.API.CONSUMER.CREATE.SKYFLOW_SERVICES.controller-0.skyflow.>",
        ):
            update = {
                "stream_name": "SKYFLOW_SERVICES",
                "config": {"name": "controller-0", "filter_subject": "skyflow.addr.>"},
                "action": "update",
            }
            await attacker.publish(
                subject, json.dumps(update).encode(), reply="_SKYFLOW_LINK.hub.attack"
            )
        # The hub's JetStream info crosses (the site's link probe), but its answer comes
        # back only on the probe subjects, not to the client's inbox.
        with pytest.raises(NatsTimeout):
            await attacker.request("$JS.hub.API.INFO", b"", timeout=1)
        await attacker.flush()
        await asyncio.sleep(0.5)
        # Each is answered "no responders" by east's own server: nothing crossed.
        assert answers == [("503", b"")] * 3, answers
    finally:
        await attacker.close()
    for name, state in before.items():
        after = (await hub_info(up, name))["state"]
        assert (after["first_seq"], after["messages"]) == (state["first_seq"], state["messages"])
        assert after["last_seq"] >= state["last_seq"]
    durable = await as_admin(up)
    try:
        reply = await durable.request(
            "$JS.API.CONSUMER.INFO.SKYFLOW_SERVICES.controller-0", b"", timeout=5
        )
    finally:
        await durable.close()
    assert json.loads(reply.data)["config"]["filter_subject"] == "skyflow.svc.>"


async def test_a_site_delivers_into_its_own_views_only_and_never_into_the_registry(
    sites: tuple[Running, Path],
) -> None:
    up, _ = sites
    admin = await as_admin(up)
    # What each subscription at the hub heard. (A delivery into east's views, heard on
    # $JS.S.east.>, is handed to a client under its original subject: kept apart.)
    heard: dict[str, list[str]] = {}

    def hear(pattern: str) -> Callable[[Any], Awaitable[None]]:
        async def record(msg: Any) -> None:
            heard.setdefault(pattern, []).append(msg.subject)

        return record

    for pattern in ("$JS.S.east.>", "$JS.S.west.>", "skyflow.>", "_SKYFLOW_LINK.west.>"):
        await admin.subscribe(pattern, cb=hear(pattern))
    await admin.flush()
    attacker = await nats.connect(up.east)
    forged = (
        "$JS.S.west.S.forged",  # into west's views at the hub
        "skyflow.svc.shop.evil",  # into the hub's service log
        "skyflow.task.shop.evil.app.web",  # into the hub's task intake
        "_SKYFLOW_LINK.west.forged",  # an answer to the hub's probe of west
    )
    try:

        async def send_all() -> bool:
            for subject in (*forged, "$JS.S.east.S.own"):
                await attacker.publish(subject, b'{"forged": true}')
            await attacker.flush()
            await asyncio.sleep(0.1)
            return "$JS.S.east.S.own" in heard.get("$JS.S.east.>", [])

        # The one east may deliver on reaches the hub: the others would have too.
        await until("east's delivery into its own views reaches the hub", send_all, timeout=10)
        await asyncio.sleep(0.3)
    finally:
        await attacker.close()
        await admin.close()
    elsewhere = {s for p, subjects in heard.items() if p != "$JS.S.east.>" for s in subjects}
    assert not set(forged) & elsewhere, heard


async def test_the_hubs_clients_are_answered_by_the_hub_alone(
    sites: tuple[Running, Path],
) -> None:
    """Unsecured, the sites subscribe to the system requests the hub's clients make
    (``$SYS.REQ.USER.INFO``: measured, east and west answered the hub's admin, beside the
    hub); secured, the link carries none of them."""
    up, _ = sites
    admin = await as_admin(up)
    answers: list[str] = []

    async def answered(msg: Any) -> None:
        answers.append(json.loads(msg.data)["server"]["name"])

    inbox = admin.new_inbox()
    await admin.subscribe(inbox, cb=answered)
    await admin.publish("$SYS.REQ.USER.INFO", b"", reply=inbox)
    await until("the hub answers", lambda: _some(answers), timeout=5)
    await asyncio.sleep(0.5)
    await admin.close()
    assert answers == ["hub"]


async def _some(items: list[str]) -> bool:
    return bool(items)


@pytest.mark.parametrize("key", ["none", "unknown", "as a client", "known, without TLS"])
async def test_a_leaf_without_a_known_key_is_refused(sites: tuple[Running, Path], key: str) -> None:
    up, root = sites
    keys = leaf_keys(("east", "intruder"))
    if key == "known, without TLS":
        # East's own key, but the link in the clear: the hub requires TLS first.
        assert up.keys is not None
        keys.seed["intruder"] = up.keys.seed["east"]
    if key == "as a client":
        # A site's key opens no client connection at the hub (leaf connections only).
        assert up.keys is not None
        client = NatsClient()
        try:
            with pytest.raises(Exception, match=r"(?i)authorization"):
                await client.connect(
                    up.hub,
                    nkeys_seed_str=up.keys.seed["east"],
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    connect_timeout=5,
                )
        finally:
            await client.close()  # (its socket, left open by the refused connect)
        return
    text = site_config("intruder", -1, up.link.target, secured=True)
    if key == "none":
        text = text.replace("      seed: $SKYFLOW_LEAF_SEED\n", "")
    if key == "known, without TLS":
        text = text.replace('url: "tls://', 'url: "nats-leaf://')
        text = text.replace("      tls: { ca_file: $SKYFLOW_LEAF_TLS_CA }\n", "")
        assert "tls" not in text.replace("tls://", "").lower().split("leafnodes")[1], text
    config = root / f"intruder-{key}.conf"
    config.write_text(text)
    env = site_env(keys, up.tls, "intruder")
    with NatsServer(root / f"intruder-{key}", config=config, env=env) as intruder:
        log = root / f"intruder-{key}.log"

        # Refused at login; or, without the CA, at the TLS handshake the hub requires: a
        # remote without a tls block upgrades all the same (the hub's INFO says TLS is
        # required) and cannot verify the hub's certificate (measured: "certificate
        # signed by unknown authority", the hub logging "TLS Handshake Failure").
        why = "tls handshake failure" if key == "known, without TLS" else "authorization violation"

        async def refused() -> bool:
            return why in log.read_text().lower()

        await until("the hub refuses the intruder's leaf connection", refused, timeout=10)
        if key == "known, without TLS":
            # Spoken by hand in the clear, the login never gets an answer: the connection
            # is closed once the hub's TLS handshake fails.
            assert up.keys is not None
            with pytest.raises((AssertionError, ConnectionError, TimeoutError)):
                await leaf_protocol(
                    up.link.target, up.keys.seed["east"], None, listen="x", send="x", reply="x"
                )
        client = await nats.connect(intruder.url)
        try:
            with pytest.raises(NoRespondersError):
                await client.request("$JS.hub.API.INFO", b"", timeout=2)
        finally:
            await client.close()


async def leaf_protocol(
    port: int, seed: str, ca: Path | None, *, listen: str, send: str, reply: str
) -> list[str]:
    """A leaf connection spoken by hand, as a compromised site's server could: logs in
    with ``seed``, asks for ``listen`` (LS+), sends an empty message on ``send`` with
    ``reply``, and gives what the hub said (its errors, then what it sent, less its INFO,
    interest and PINGs) until it is quiet for a second or closes the connection
    (``<closed>``)."""
    import base64

    import nkeys

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    said: list[str] = []
    try:
        info = json.loads((await reader.readline()).decode().split(" ", 1)[1])
        # The hub requires TLS on its leaf port: upgraded after its INFO, the hub's
        # certificate checked against the sites' CA.
        assert info.get("tls_required") is True, info
        if ca is not None:  # (None: in the clear, as a rogue might try)
            await writer.start_tls(ssl.create_default_context(cafile=str(ca)))
        pair = nkeys.from_seed(seed.encode())
        signature = base64.urlsafe_b64encode(pair.sign(info["nonce"].encode()))
        connect = {
            "verbose": False, "pedantic": False, "headers": True, "protocol": 1,
            "name": "rogue", "nkey": pair.public_key.decode(),
            "sig": signature.decode().rstrip("="),
        }  # fmt: skip
        writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        # In once the hub answers the PING; then the hub's INFO with the permissions.
        while not (line := await asyncio.wait_for(reader.readline(), 5)).startswith(b"PONG"):
            assert line, "the hub closed the connection at login"
        await asyncio.sleep(0.2)
        writer.write(f"LS+ {listen}\r\nPING\r\n".encode())
        await writer.drain()
        while not (line := await asyncio.wait_for(reader.readline(), 5)).startswith(b"PONG"):
            if not line:
                return [*said, "<closed>"]
            if line.startswith(b"-ERR"):
                said.append(line.decode(errors="replace").strip())
        writer.write(f"LMSG {send} {reply} 0\r\n\r\n".encode())
        await writer.drain()
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=1.0)
            except TimeoutError:
                return said
            if not line:
                return [*said, "<closed>"]
            text = line.decode(errors="replace").strip()
            if text == "PING":
                writer.write(b"PONG\r\n")
            elif not text.startswith(("INFO", "LS+", "LS-")):
                said.append(text)
    finally:
        writer.close()


async def test_a_site_server_that_ignores_its_permissions_is_cut_off_at_the_hub(
    sites: tuple[Running, Path],
) -> None:
    """The site's server drops what its permissions refuse before sending; a compromised
    one need not. The hub enforces them itself: what the link may not carry closes it."""
    up, _ = sites
    assert up.keys is not None
    assert up.tls is not None
    port, seed, ca = up.link.target, up.keys.seed["east"], up.tls.ca
    probe = "_SKYFLOW_LINK.hub.rogue"
    # What the permissions allow works over this hand-spoken link (the proof it is one).
    allowed = await leaf_protocol(
        port, seed, ca, listen=probe, send="$JS.hub.API.INFO", reply=probe
    )
    assert f"LMSG {probe} " in " ".join(allowed) and "<closed>" not in allowed, allowed
    deleting = await leaf_protocol(
        port, seed, ca, listen=probe, send="$JS.hub.API.STREAM.DELETE.SKYFLOW_SERVICES", reply=probe
    )
    assert deleting[-2:] == [
        "-ERR 'Permissions Violation for Publish to \"$JS.API.STREAM.DELETE.SKYFLOW_SERVICES\"'",
        "<closed>",
    ], deleting
    # Asking for an inbox of the hub's by name closes the link too; asking for all of
    # them is let through (the hub checks a wildcard message by message) and hears none.
    snooping = await leaf_protocol(port, seed, ca, listen="_INBOX.x", send="x", reply=probe)
    assert snooping[-2:] == [
        "-ERR 'Permissions Violation for Subscription to \"_INBOX.x\"'",
        "<closed>",
    ], snooping

    async def admin_asks() -> None:
        admin = await as_admin(up)
        try:
            for _ in range(15):
                await admin.request("$JS.API.STREAM.INFO.SKYFLOW_SITE_TASKS_west", b"", timeout=5)
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

    heard, _ = await asyncio.gather(
        leaf_protocol(port, seed, ca, listen="_INBOX.>", send="x", reply=probe), admin_asks()
    )
    assert not any(line.startswith("LMSG") for line in heard), heard
    assert (await hub_info(up, "SKYFLOW_SERVICES"))["config"]["name"] == "SKYFLOW_SERVICES"
