"""``skyctl agent --dns --proxy``: the node's DNS and proxy hosted beside its reads, fed
by one view, each behaving as it does alone."""

from __future__ import annotations

import asyncio
import re

import dns.message
import dns.query
import dns.rdatatype

from registry import Registry
from registry.jetstream.server import NatsServer
from tests.agent.agents import READY, socket_folder, status, through
from tests.helpers import running, until
from tests.proxy.traffic import NODE, NS, http_backends, http_get, spread, task, web


async def test_the_agent_hosts_dns_and_the_proxy_beside_its_reads(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.91", "127.0.0.92"]
    async with (
        http_backends(addresses) as backends,
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backends[0].port))
        cluster_ip, node_port = record.service.cluster_ip, record.service.ports[0].node_port
        assert cluster_ip is not None and node_port is not None
        announcer = await registry.announcer()
        announced = await announcer.announce(
            [task(f"w{i}", a) for i, a in enumerate(addresses)], ttl=30
        )
        with socket_folder() as folder:
            path = str(folder / "agent.sock")
            flags = ["--dns", "127.0.0.1:0", "--proxy", "--proxy-mode", "userspace"]
            async with running(
                "agent", "--socket", path, *flags, "--node-address", NODE, url=url, ready=READY
            ) as lines:
                await lines.wait_for(lambda line: line.startswith("proxy: forwarding"), 30)
                await lines.wait_for(lambda line: line.startswith("dns: serving"), 30)
                serving = next(line for _, line in lines.lines if line.startswith("dns: serving"))
                match = re.search(r" on 127\.0\.0\.1:(\d+) ", serving)
                assert match, serving
                port = int(match.group(1))

                def ask(name: str, kind: str) -> list[str]:
                    query = dns.message.make_query(name, kind)
                    answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
                    return sorted(r.to_text() for rrset in answer.answer for r in rrset)

                # DNS: a task by name; the service by its cluster IP, which the hosted
                # proxy routes (as skyctl dns --cluster-ips beside skyctl proxy).
                assert await asyncio.to_thread(ask, f"w1.{NS}.task.skyflow.", "A") == ["127.0.0.92"]
                assert await asyncio.to_thread(ask, f"web.{NS}.svc.skyflow.", "A") == [cluster_ip]

                # The proxy: the node port reaches both tasks.
                async def both() -> bool:
                    got = await spread(NODE, node_port, 20, backends)
                    return all(n > 0 for n in got.values())

                await until("the hosted proxy forwards to both tasks", both)
                assert await http_get(NODE, node_port) in addresses

                # Reads, beside them.
                reply = await asyncio.to_thread(
                    through, path, url, "get", "endpoints", "web", "-n", NS
                )
                assert reply.status == "done" and b"127.0.0.91" in reply.stdout, reply.why
                assert status(path)["served"] == 1

                # A task withdrawn leaves DNS too.
                await announcer.withdraw([a for a in announced if a.task.name == "w1"])

                async def gone() -> bool:
                    return await asyncio.to_thread(ask, f"w1.{NS}.task.skyflow.", "A") == []

                await until("the withdrawn task leaves the hosted DNS", gone)
