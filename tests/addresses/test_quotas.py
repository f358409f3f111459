"""Per-namespace quotas on a real server with nats-server-auth.conf: set by admins only,
checked by the allocator at every write that adds to a namespace, so a writer cannot
take the node-port range (or the LoadBalancers) that every team shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events import Port, Service, ServiceType
from registry.client import Registry
from registry.errors import QuotaExceeded
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from tests.helpers import Result, raw_as, skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with auth_server(tmp_path) as running:
        init = skyctl(
            "init", "--user", "admin", "--password", PASSWORDS["admin"], *INIT_TEAMS,
            url=running.url,
        )  # fmt: skip
        assert init.code == 0, init.err
        yield running


def as_user(server: NatsServer, user: str, *args: str, stdin: str = "") -> Result:
    inbox = [] if user == "admin" else ["--inbox-prefix", f"_INBOX_{user}"]
    return skyctl(
        *args, "--user", user, "--password", PASSWORDS[user], *inbox, url=server.url, stdin=stdin
    )


def one_line(result: Result) -> None:
    assert result.out == "" and result.err.count("\n") == 1, result
    assert "Traceback" not in result.err


def node_ports(n: int, *, ports: int = 1, namespace: str = "shop", kind: str = "NodePort") -> str:
    docs = []
    for i in range(n):
        lines = [
            "apiVersion: skyflow.io/v1",
            "kind: Service",
            f"metadata: {{name: bulk{i}, namespace: {namespace}}}",
            f"spec:\n  type: {kind}\n  ports:",
        ]
        lines += [f"  - {{name: p{p}, port: {80 + p}}}" for p in range(ports)]
        docs.append("\n".join(lines))
    return "\n---\n".join(docs) + "\n"


def test_a_writer_cannot_take_the_node_port_range_with_the_cli(server: NatsServer) -> None:
    made = as_user(
        server,
        "admin",
        "create",
        "quota",
        "shop",
        "-n",
        "shop",
        "--hard=services=10,services.nodeports=4,services.loadbalancers=1",
    )
    assert (made.code, made.out) == (0, "resourcequota/shop created\n"), made
    for i in range(4):
        ok = as_user(
            server,
            "shop-writer",
            "create",
            "svc",
            f"np{i}",
            "-n",
            "shop",
            "-t",
            "NodePort",
            "-p",
            "80",
        )
        assert ok.code == 0, ok.err
    refused = as_user(
        server, "shop-writer", "create", "svc", "np4", "-n", "shop", "-t", "NodePort", "-p", "80"
    )
    assert refused.code == 1
    one_line(refused)
    assert refused.err.startswith(
        'error: quota "shop" exceeded in namespace shop: services.nodeports 4/4'
    ), refused.err
    # Eight services of many ports each, in one manifest (the bulk path): none fits.
    bulk = as_user(server, "shop-writer", "create", "-f", "-", stdin=node_ports(8, ports=100))
    assert bulk.code != 0 and "services.nodeports 4/4" in bulk.err, bulk
    listed = as_user(server, "admin", "get", "svc", "-n", "shop", "-o", "json")
    assert listed.out.count('"nodePort"') == 4, listed.out
    # A ClusterIP service takes no node port: within services=10 it is still allowed.
    assert as_user(server, "shop-writer", "create", "svc", "plain", "-n", "shop").code == 0
    # Deleting gives room back.
    assert as_user(server, "shop-writer", "delete", "svc", "np0", "-n", "shop").code == 0
    again = as_user(
        server, "shop-writer", "create", "svc", "np4", "-n", "shop", "-t", "NodePort", "-p", "80"
    )
    assert again.code == 0, again.err
    # Another namespace is not bound by shop's quota.
    other = as_user(server, "admin", "create", "-f", "-", stdin=node_ports(6, namespace="other"))
    assert other.code == 0, other.err


def test_load_balancers_and_services_are_counted(server: NatsServer) -> None:
    made = as_user(
        server,
        "admin",
        "create",
        "quota",
        "q",
        "-n",
        "shop",
        "--hard",
        "services=3,services.loadbalancers=1",
    )
    assert made.code == 0, made
    lb = ["-n", "shop", "-t", "LoadBalancer", "-p", "80"]
    assert as_user(server, "shop-writer", "create", "svc", "lb1", *lb).code == 0
    second = as_user(server, "shop-writer", "create", "svc", "lb2", *lb)
    assert second.code == 1 and "services.loadbalancers 1/1" in second.err, second
    assert as_user(server, "shop-writer", "create", "svc", "a", "-n", "shop").code == 0
    assert as_user(server, "shop-writer", "create", "svc", "b", "-n", "shop").code == 0
    fourth = as_user(server, "shop-writer", "create", "svc", "c", "-n", "shop")
    assert fourth.code == 1 and 'quota "q" exceeded in namespace shop: services 3/3' in fourth.err


async def test_a_writer_can_neither_set_nor_forge_a_quota(server: NatsServer) -> None:
    by_cli = as_user(
        server, "shop-writer", "create", "quota", "big", "-n", "shop", "--hard=services=1000"
    )
    assert by_cli.code == 3, by_cli
    one_line(by_cli)
    assert "permission denied" in by_cli.err
    async with raw_as(server.url, "shop-writer", PASSWORDS["shop-writer"]) as writer:
        for subject in ("skyflow.quota.shop", "skyflow.quota.other"):
            await writer.nc.publish(subject, b"\x80")
        for subject in ("skyflow.quota.shop", "skyflow.quota.other"):
            assert await writer.refused(f'publish to "{subject}"'), writer.errors


@pytest.mark.parametrize(
    "hard",
    ["services", "services=x", "pods=3", "services=1,services=2", "services=-1", "services=1e3"],
)
def test_a_bad_quota_is_one_line_naming_it(server: NatsServer, hard: str) -> None:
    result = as_user(server, "admin", "create", "quota", "q", "-n", "shop", f"--hard={hard}")
    assert result.code == 2, result
    one_line(result)
    assert "--hard" in result.err


async def test_concurrent_creates_do_not_overrun_a_quota(
    server: NatsServer, report: Callable[[str], None]
) -> None:
    """Usage is counted from the services themselves at write time (no counter a writer
    could forge); each create's batch also appends to the namespace's usage subject on the
    sequence read before counting, so of racing creates only one passes on each count."""
    assert (
        as_user(server, "admin", "create", "quota", "q", "-n", "shop", "--hard=services=4").code
        == 0
    )
    credentials = Credentials(
        user="shop-writer", password=PASSWORDS["shop-writer"], inbox_prefix="_INBOX_shop-writer"
    )
    writers = [await Registry.connect(server.url, credentials=credentials) for _ in range(8)]
    try:
        results = await asyncio.gather(
            *(
                w.create(
                    Service(
                        namespace="shop",
                        name=f"race{i}",
                        type=ServiceType.NODE_PORT,
                        ports=(Port(port=80, target_port=80),),
                    )
                )
                for i, w in enumerate(writers)
            ),
            return_exceptions=True,
        )
        made = sum(1 for r in results if not isinstance(r, BaseException))
        assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, BaseException))
        assert made == 4, results
        report(f"quota services=4, 8 creates at once from 8 connections: {made} stored")
        with pytest.raises(QuotaExceeded):
            await writers[0].create(Service(namespace="shop", name="after"))
    finally:
        for w in writers:
            await w.close()


def test_a_bulk_create_stops_at_the_quota(server: NatsServer) -> None:
    quota = ["create", "quota", "q", "-n", "shop", "--hard=services.nodeports=4"]
    assert as_user(server, "admin", *quota).code == 0
    bulk = as_user(server, "shop-writer", "create", "-f", "-", stdin=node_ports(8))
    assert bulk.code == 1, bulk
    assert bulk.out.count(" created") == 4, bulk.out
    assert bulk.err.count("services.nodeports 4/4") == 4, bulk.err
    listed = as_user(server, "admin", "get", "svc", "-n", "shop", "-o", "json")
    assert listed.out.count('"nodePort"') == 4, listed.out
