"""Address records written around the registry, by a writer with raw nats-py, against
nats-server-auth.conf: an address is held while a live service names it, so a record no
live service backs (forged, orphaned or unreadable) neither grants nor blocks it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from events import AddressAllocated, AddressKind, Holder, encode, new_event_id, utc_now
from events.subjects import address_subject
from registry.jetstream.server import NatsServer
from tests.helpers import Result, skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server

# Small ranges, so every free address can be covered with garbage.
CIDR, PORTS = "10.0.0.0/29", "30000-30005"  # 6 cluster IPs, 6 node ports


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with auth_server(tmp_path) as running:
        admin = ["--user", "admin", "--password", PASSWORDS["admin"]]
        init = skyctl(
            "init",
            "--service-cidr",
            CIDR,
            "--node-port-range",
            PORTS,
            *admin,
            *INIT_TEAMS,
            url=running.url,
        )
        assert init.code == 0, init.err
        made = skyctl("create", "-f", "-", *admin, url=running.url, stdin=_manifest("other", "api"))
        assert made.code == 0, made.err
        yield running


def as_user(server: NatsServer, user: str, *args: str, stdin: str = "") -> Result:
    inbox = [] if user == "admin" else ["--inbox-prefix", f"_INBOX_{user}"]
    return skyctl(
        *args, "--user", user, "--password", PASSWORDS[user], *inbox, url=server.url, stdin=stdin
    )


@pytest.fixture
async def writer(server: NatsServer) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(
        server.url,
        user="shop-writer",
        password=PASSWORDS["shop-writer"],
        inbox_prefix="_INBOX_shop-writer",
    )
    try:
        yield nc
    finally:
        await nc.close()


def _manifest(namespace: str, name: str, *, ip: str | None = None, port: int | None = None) -> str:
    lines = [
        "apiVersion: skyflow.io/v1",
        "kind: Service",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "spec:",
        "  type: NodePort",
    ]
    if ip is not None:
        lines.append(f"  clusterIP: {ip}")
    lines += ["  ports:", "  - port: 80"]
    if port is not None:
        lines.append(f"    nodePort: {port}")
    return "\n".join(lines) + "\n"


def api_addresses(server: NatsServer) -> tuple[str, int]:
    got = as_user(server, "admin", "get", "svc", "api", "-n", "other", "-o", "json")
    assert got.code == 0, got.err
    import json

    spec = json.loads(got.out)["spec"]
    return spec["clusterIP"], spec["ports"][0]["nodePort"]


async def forge(nc: NatsClient, kind: AddressKind, value: str) -> int:
    """An ``AddressAllocated`` naming a service that does not exist, appended over the
    subject's last record (the writer may publish address records: its batches carry
    them)."""
    js = nc.jetstream()
    record = AddressAllocated(
        id=new_event_id(),
        time=utc_now(),
        actor="shop-writer",
        kind=kind,
        address=value,
        holder=Holder(namespace="ghost", name="nobody", uid="forged-uid"),
    )
    ack = await js.publish(address_subject(kind, value), encode(record), timeout=5)
    return int(ack.seq)


async def test_a_forged_allocation_over_another_teams_address_takes_nothing(
    server: NatsServer, writer: NatsClient
) -> None:
    ip, port = api_addresses(server)
    await forge(writer, AddressKind.CLUSTER_IP, ip)
    await forge(writer, AddressKind.NODE_PORT, str(port))
    by_ip = as_user(
        server, "shop-writer", "create", "svc", "thief", "-n", "shop", "--cluster-ip", ip
    )
    assert by_ip.code != 0, by_ip
    assert "held by service other/api" in by_ip.err and "Traceback" not in by_ip.err
    assert by_ip.err.count("\n") == 1
    by_port = as_user(
        server, "shop-writer", "create", "-f", "-", stdin=_manifest("shop", "thief2", port=port)
    )
    assert by_port.code != 0, by_port
    assert "held by service other/api" in by_port.err, by_port.err
    listed = as_user(server, "admin", "get", "svc", "-A", "-o", "json")
    assert "thief" not in listed.out


async def test_unreadable_records_over_free_addresses_block_nothing(
    server: NatsServer, writer: NatsClient
) -> None:
    ip, port = api_addresses(server)
    js = writer.jetstream()
    free_ips = [f"10.0.0.{i}" for i in range(1, 7) if f"10.0.0.{i}" != ip]
    free_ports = [p for p in range(30000, 30006) if p != port]
    for value in free_ips:
        await js.publish(address_subject(AddressKind.CLUSTER_IP, value), b"\x80garbage", timeout=5)
    for number in free_ports:
        await js.publish(address_subject(AddressKind.NODE_PORT, str(number)), b"\xc1", timeout=5)
    # Asked for by name.
    asked = as_user(
        server,
        "shop-writer",
        "create",
        "-f",
        "-",
        stdin=_manifest("shop", "asked", ip=free_ips[-1], port=free_ports[-1]),
    )
    assert asked.code == 0, asked.err
    got = as_user(server, "admin", "get", "svc", "asked", "-n", "shop", "-o", "json")
    assert free_ips[-1] in got.out and str(free_ports[-1]) in got.out
    # Chosen by the registry: every free address left lies under garbage.
    auto = as_user(server, "shop-writer", "create", "-f", "-", stdin=_manifest("shop", "auto"))
    assert auto.code == 0, auto.err
    got = as_user(server, "admin", "get", "svc", "auto", "-n", "shop", "-o", "json")
    assert any(f'"{value}"' in got.out for value in free_ips[:-1]), (got, auto)
    # And the forged-or-unreadable rule never gives away what is held.
    again = as_user(server, "shop-writer", "create", "svc", "x", "-n", "shop", "--cluster-ip", ip)
    assert "held by service other/api" in again.err, again


async def test_audit_reports_and_repair_rewrites_the_bad_records(
    server: NatsServer, writer: NatsClient
) -> None:
    ip, port = api_addresses(server)
    await forge(writer, AddressKind.CLUSTER_IP, ip)  # over a held address
    await forge(writer, AddressKind.NODE_PORT, "30005" if port != 30005 else "30004")  # free
    garbage = "10.0.0.6" if ip != "10.0.0.6" else "10.0.0.5"
    js = writer.jetstream()
    await js.publish(address_subject(AddressKind.CLUSTER_IP, garbage), b"\x80", timeout=5)
    audit = as_user(server, "admin", "audit", "verify")
    assert audit.code != 0
    assert f"cluster IP {ip} is held by ghost/nobody" in audit.out + audit.err, audit
    # A dry run lists the three and writes nothing.
    before = as_user(server, "admin", "history", "svc", "api", "-n", "other")
    dry = as_user(server, "admin", "addresses", "repair", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.lines[-1] == "3 records to repair (dry run)", dry.out
    assert "would record as held by other/api" in dry.out and "unreadable" in dry.out
    assert as_user(server, "admin", "addresses", "repair", "--dry-run").out == dry.out
    # The repair: the held address names its holder again, the others are released.
    done = as_user(server, "admin", "addresses", "repair")
    assert done.code == 0, done.err
    assert done.lines[-1] == "3 records repaired", done.out
    assert "recorded as held by other/api again" in done.out
    assert done.out.count(": released") == 2, done.out
    clean = as_user(server, "admin", "addresses", "repair")
    assert clean.out.startswith("the address ledger is clean"), clean
    after = as_user(server, "admin", "audit", "verify")
    assert "held by ghost/nobody" not in after.out + after.err, after
    assert f"service other/api has cluster IP {ip}" not in after.out + after.err, after
    assert as_user(server, "admin", "history", "svc", "api", "-n", "other").out == before.out
    # And the address is still other/api's.
    taken = as_user(server, "shop-writer", "create", "svc", "x", "-n", "shop", "--cluster-ip", ip)
    assert "held by service other/api" in taken.err, taken
