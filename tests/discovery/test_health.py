"""Tasks that tell the truth, on real servers: a health check sets readiness everywhere a
task is read (endpoints, the Resolver, DNS, the proxy), ``skyctl task drain`` stops new
connections while open ones complete, a second announcer of a live name is refused, and
named ports reach the process that announced them."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import dns.asyncresolver
import dns.exception
import dns.resolver

from events import Port, Service, ServiceType
from events.control import ReadinessAction
from events.task import Task
from registry.client import Registry
from registry.discovery.checks import parse_check
from registry.errors import TaskNotAnswering, TaskTaken
from registry.jetstream.server import NatsServer
from tests.helpers import Lines, running, skyctl, until
from tests.proxy.traffic import (
    NODE,
    NS,
    connection_to,
    http_backends,
    http_get,
    spread,
    task,
    userspace_proxy,
    web,
)

_SERVING = re.compile(r"dns: serving .* on 127\.0\.0\.1:(\d+)")


class Health:
    """A /healthz endpoint whose answer the test decides."""

    def __init__(self) -> None:
        self.status = 200
        self.port = 0
        self.asked = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.asked += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def health_endpoint() -> AsyncIterator[Health]:
    health = Health()
    server = await asyncio.start_server(health.handle, NODE, 0)
    health.port = server.sockets[0].getsockname()[1]
    try:
        yield health
    finally:
        server.close()


async def dns_port(lines: Lines) -> int:
    await lines.wait_for(lambda line: _SERVING.match(line) is not None, timeout=30)
    return next(int(m.group(1)) for _, line in lines.lines if (m := _SERVING.match(line)))


async def dns_answer(port: int, name: str, rdtype: str = "A") -> set[str]:
    ask = dns.asyncresolver.Resolver(configure=False)
    ask.nameservers, ask.port = [NODE], port
    ask.timeout = ask.lifetime = 2.0
    try:
        found = await ask.resolve(name, rdtype)
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN, dns.exception.Timeout):
        return set()
    return {r.to_text() for r in found}


async def test_a_failing_check_takes_the_task_out_of_every_reader_and_back(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.91", "127.0.0.92"]
    async with (
        http_backends(addresses) as backends,
        health_endpoint() as health,
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backends[0].port))
        node_port = record.service.ports[0].node_port
        assert node_port is not None
        check = parse_check(
            f"http://{NODE}:{health.port}/healthz", interval=0.3, timeout=1, fail_after=2
        )
        async with (
            registry.announce(task("checked", addresses[0]), ttl=30, check=check) as keeper,
            registry.announce(task("plain", addresses[1]), ttl=30),
            userspace_proxy(url) as _proxy,
            running("dns", "--listen", f"{NODE}:0", url=url, ready="dns:") as dns_proc,
            registry.resolver() as resolver,
        ):
            assert keeper.task.ready and health.asked >= 1  # checked before it was announced
            port = await dns_port(dns_proc)
            name = f"web.{NS}.svc.skyflow."

            async def readers_see(expected: set[str]) -> bool:
                ready = {
                    a.address for a in (await registry.endpoints(NS, "web")).addresses if a.ready
                }
                resolved = {e.address for e in (await resolver.endpoints(f"{NS}/web")).endpoints()}
                answered = await dns_answer(port, name)
                proxied = {b for b, n in (await spread(NODE, node_port, 20, backends)).items() if n}
                return ready == resolved == answered == proxied == expected

            await until("both tasks everywhere", lambda: readers_see(set(addresses)))
            health.status = 503
            took = await until("the sick task gone", lambda: readers_see({addresses[1]}))
            task_now = keeper.task
            assert not task_now.ready and task_now.reason is not None
            assert "HTTP 503" in task_now.reason, task_now.reason
            health.status = 200
            await until("the task back", lambda: readers_see(set(addresses)))
            assert keeper.task.ready and keeper.task.reason is None
    # (Timing belongs to the benchmark; this only says it went within the deadline.)
    assert took < 30


async def test_drain_stops_new_connections_while_an_open_one_completes(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.93", "127.0.0.94"]
    async with (
        http_backends(addresses) as backends,
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backends[0].port))
        node_port = record.service.ports[0].node_port
        assert node_port is not None
        async with (
            registry.announce(task("leaving", addresses[0]), ttl=30),
            registry.announce(task("staying", addresses[1]), ttl=30),
            userspace_proxy(url),
        ):

            async def both() -> bool:
                got = await spread(NODE, node_port, 20, backends)
                return all(got.values())

            await until("both tasks behind the proxy", both)
            reader, writer = await connection_to(backends[0], NODE, node_port)
            drained = await asyncio.to_thread(
                skyctl, "task", "drain", "leaving", "-n", NS, "--reason", "deploy v2", url=url
            )
            assert drained.code == 0, drained.err
            assert drained.out.startswith("task/leaving draining (drained by "), drained.out
            assert "deploy v2" in drained.out
            # The heartbeat was stored before the reply: every reader already knows.
            endpoints = await registry.endpoints(NS, "web")
            (gone,) = [a for a in endpoints.addresses if a.task == "leaving"]
            assert gone.draining and not gone.ready

            async def only_staying() -> bool:
                got = await spread(NODE, node_port, 20, backends)
                return got[addresses[0]] == 0 and got[addresses[1]] == 20

            await until("no new connection to the drained task", only_staying)
            writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")  # the open one still works
            await writer.drain()
            response = await asyncio.wait_for(reader.read(), 10)
            assert response.endswith(addresses[0].encode()), response
            writer.close()
            listed = await asyncio.to_thread(skyctl, "get", "tasks", "-n", NS, url=url)
            assert re.search(r"^leaving\s+draining\s", listed.out, re.MULTILINE), listed.out
            back = await asyncio.to_thread(skyctl, "task", "ready", "leaving", "-n", NS, url=url)
            assert back.code == 0 and back.out.strip() == "task/leaving ready", back.out
            await until("the task back behind the proxy", both)


async def test_not_ready_by_hand_and_the_library_and_nobody_answering(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        one = Task(namespace=ns, name="one", labels={"app": "x"}, address="10.7.0.1")
        async with registry.announce(one, ttl=30) as keeper:
            held = await asyncio.to_thread(
                skyctl, "task", "not-ready", "one", "-n", ns, "--reason", "INC-42", url=url
            )
            assert held.code == 0 and "not ready (set not ready by " in held.out, held.out
            (live,) = await registry.tasks(ns)
            assert not live.ready and live.reason is not None and "INC-42" in live.reason
            # The program itself asks the same through its keeper.
            task_now = await keeper.request(ReadinessAction.READY)
            assert task_now.ready
            (live,) = await registry.tasks(ns)
            assert live.ready and live.reason is None
            # Through the server, from another connection: the library's call.
            drained = await registry.set_readiness(ns, "one", ReadinessAction.DRAIN, "bye")
            assert drained.draining and not drained.ready
        nobody = await asyncio.to_thread(skyctl, "task", "drain", "one", "-n", ns, url=url)
        assert nobody.code == 1 and nobody.err.count("\n") == 1, nobody.err
        assert "no announcer of task one" in nobody.err
        try:
            await registry.set_readiness(ns, "one", ReadinessAction.READY)
        except TaskNotAnswering:
            pass
        else:
            raise AssertionError("a withdrawn task answered")
    for bad in (["--reason", "two\nlines"], ["--reason", ""], ["-n", "bad.ns"]):
        got = await asyncio.to_thread(skyctl, "task", "drain", "one", *bad, url=url)
        assert got.code == 2 and got.err.count("\n") == 1, (bad, got.err)


async def test_a_second_announcer_of_a_live_name_is_refused_unless_it_replaces(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        first = Task(namespace=ns, name="solo", labels={"app": "x"}, address="10.7.1.1")
        async with registry.announce(first, ttl=30):
            second = await asyncio.to_thread(
                skyctl, "announce", "task", "solo", "-n", ns, "-a", "10.7.1.2", url=url
            )
            assert second.code == 1 and second.err.count("\n") == 1, second.err
            assert "already announced (address 10.7.1.1" in second.err, second.err
            assert "--replace" in second.err
            (live,) = await registry.tasks(ns)
            assert live.address == "10.7.1.1"  # untouched: nothing was sent
            try:
                async with registry.announce(first.model_copy(update={"address": "10.7.1.3"})):
                    raise AssertionError("a second announcer got in")
            except TaskTaken:
                pass
            async with running(
                "announce",
                "task",
                "solo",
                "-n",
                ns,
                "-a",
                "10.7.1.4",
                "--replace",
                url=url,
                ready="task/solo announced",
            ):
                (live,) = await registry.tasks(ns)
                assert live.address == "10.7.1.4"


async def test_named_ports_reach_the_process_that_announced_them(
    fresh_server: NatsServer,
) -> None:
    """Two tasks on one address, each on a port of its own named ``http``: the service's
    targetPort ``http`` reaches both processes, through the proxy and in SRV answers."""
    url = fresh_server.url
    async with (
        http_backends(["127.0.0.95"]) as (one,),
        http_backends(["127.0.0.95"]) as (two,),
        await Registry.connect(url) as registry,
    ):
        assert one.port != two.port
        one.address, two.address = "one", "two"  # what each answers: the process
        service = Service(
            namespace=NS,
            name="web",
            type=ServiceType.NODE_PORT,
            selector={"app": "web"},
            ports=(Port(port=80, target_port="http", name="web"),),
        )
        node_port = (await registry.create(service)).service.ports[0].node_port
        assert node_port is not None
        announced = [
            skyctl_task("one", one.port),
            skyctl_task("two", two.port),
        ]
        async with (
            running(*announced[0], url=url, ready="task/one announced"),
            running(*announced[1], url=url, ready="task/two announced"),
            userspace_proxy(url),
            running("dns", "--listen", f"{NODE}:0", url=url, ready="dns:") as dns_proc,
        ):

            async def both() -> bool:
                got = await spread(NODE, node_port, 20, [one, two])
                return got.get("one", 0) > 0 and got.get("two", 0) > 0

            await until("both processes behind the proxy", both)
            port = await dns_port(dns_proc)
            srv = await dns_answer(port, f"_web._tcp.web.{NS}.svc.skyflow.", "SRV")
            assert {int(r.split()[2]) for r in srv} == {one.port, two.port}, srv
            endpoints = await asyncio.to_thread(
                skyctl, "get", "endpoints", "web", "-n", NS, url=url
            )
            for backend in (one, two):
                assert f"127.0.0.95:{backend.port}" in endpoints.out, endpoints.out
            body = await http_get(NODE, node_port)
            assert body in ("one", "two")


def skyctl_task(name: str, port: int) -> tuple[str, ...]:
    return (
        *("announce", "task", name, "-n", NS, "--labels", "app=web", "-a", "127.0.0.95"),
        *("--port", f"http={port}", "--ttl", "30s"),
    )


def test_bad_checks_and_ports_are_one_line_and_announce_nothing(url: str, ns: str) -> None:
    bad = [
        ["--check", "ftp://x"],
        ["--check", "tcp:nohost"],
        ["--check", "http://h/x", "--check-interval", "0"],
        ["--check", "http://h/x", "--fail-after", "0"],
        ["--check", "exec:"],
        ["--port", "HTTP=80"],
        ["--port", "http=99999"],
    ]
    for flags in bad:
        got = skyctl("announce", "task", "t", "-n", ns, "-a", "10.7.2.1", *flags, url=url)
        assert got.code == 2 and got.err.count("\n") == 1, (flags, got.err)
        assert "Traceback" not in got.err
