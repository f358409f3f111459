"""A site's own data plane through a cut: ``skyctl agent --dns --proxy`` run against a site's
server keeps answering reads, DNS and node-port traffic from the site's own tasks and its
mirror of the hub's log while the leaf link is down, and follows tasks born during the cut
(what it serves is live, not a copy frozen at the cut)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import dns.message
import dns.query
import pytest

from events import Port, Service, ServiceType
from events.task import Task
from registry.client import Registry
from tests.agent.agents import READY, socket_folder, through
from tests.helpers import running, skyctl, until
from tests.proxy.traffic import NODE, http_backends, http_get
from tests.sitesetup import Running, sites_ready

CUT_S = 6.0  # past east's 2 s lease: the hub calls east stale while the site serves on
EAST_LEASE_S = 2.0
_DNS_PORT = re.compile(r" on 127\.0\.0\.1:(\d+) ")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    lease = ("--lease", f"{EAST_LEASE_S:g}s")
    with sites_ready(tmp_path_factory.mktemp("at-a-site"), *lease, west=False) as running_:
        yield running_


async def test_a_sites_agent_dns_and_proxy_serve_through_a_cut(up: Running, ns: str) -> None:
    hub, east = up.hub, up.east
    async with (
        http_backends(["127.0.0.131", "127.0.0.132"]) as (first, second),
        await Registry.connect(hub) as at_hub,
        await Registry.connect(east) as at_east,
    ):
        # Both backends listen on one port (http_backends), the service's target port.
        service = Service(
            namespace=ns, name="shop", type=ServiceType.NODE_PORT, selector={"app": "shop"},
            ports=(Port(port=80, target_port=first.port),),
        )  # fmt: skip
        record = await at_hub.create(service)
        node_port = record.service.ports[0].node_port
        assert node_port is not None

        async def mirrored() -> bool:
            return skyctl("get", "svc", "shop", "-n", ns, url=east).code == 0

        await until("east's mirror holds the service", mirrored, timeout=30)
        one = Task(namespace=ns, name="shop-1", labels={"app": "shop"}, address="127.0.0.131")
        with socket_folder() as folder:
            path = str(folder / "agent.sock")
            flags = ["--dns", "127.0.0.1:0", "--proxy", "--proxy-mode", "userspace"]
            async with (
                at_east.announce(one, ttl=10),
                running(
                    "agent", "--socket", path, *flags, "--node-address", NODE, url=east,
                    ready=READY,
                ) as lines,
            ):  # fmt: skip
                await lines.wait_for(lambda line: line.startswith("proxy: forwarding"), 30)
                await lines.wait_for(lambda line: line.startswith("dns: serving"), 30)
                serving = next(x for _, x in lines.lines if x.startswith("dns: serving"))
                match = _DNS_PORT.search(serving)
                assert match, serving
                dns_port = int(match.group(1))

                def ask(name: str) -> list[str]:
                    query = dns.message.make_query(name, "A")
                    answer = dns.query.udp(query, "127.0.0.1", port=dns_port, timeout=3)
                    return sorted(r.to_text() for rrset in answer.answer for r in rrset)

                async def serves(address: str) -> bool:
                    try:
                        return await http_get(NODE, node_port, timeout=2.0) == address
                    except (OSError, TimeoutError):
                        return False

                await until("east's proxy reaches its task", lambda: serves("127.0.0.131"), 30)

                up.link.cut()
                cut_at = time.monotonic()
                try:
                    # Born inside the cut: served at east as soon as east records it.
                    two = Task(
                        namespace=ns, name="shop-2", labels={"app": "shop"},
                        address="127.0.0.132",
                    )  # fmt: skip
                    async with at_east.announce(two, ttl=10):
                        while time.monotonic() - cut_at < CUT_S:
                            reads = await asyncio.to_thread(
                                through, path, east, "get", "endpoints", "shop", "-n", ns
                            )
                            assert reads.status == "done", reads.why
                            assert b"127.0.0.131" in reads.stdout, reads.stdout
                            names = await asyncio.to_thread(ask, f"shop-1.{ns}.task.skyflow.")
                            assert names == ["127.0.0.131"], names
                            got = await http_get(NODE, node_port, timeout=5.0)
                            assert got in ("127.0.0.131", "127.0.0.132"), got
                            await asyncio.sleep(0.2)
                        await until(
                            "east's proxy reaches the task born in the cut",
                            lambda: serves("127.0.0.132"),
                            timeout=15,
                        )
                        assert second.accepted >= 1
                    # ...while the hub, hearing nothing, calls east stale (not live).
                    seen = skyctl("get", "sites", "east", "-o", "json", url=hub)
                    assert seen.code == 0, seen.err
                    assert json.loads(seen.out)["status"]["state"] == "stale", seen.out
                finally:
                    up.link.heal()
                print(f"\nsites: east's agent served through a {CUT_S:g} s cut")
