"""``skyctl proxy --mode userspace``: the same plan served by listeners in the proxy's own
process, with real traffic (no kernel table: these tests need no root)."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from events.choices import Protocol
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.proxy.userspace import loopback_for
from tests.proxy.traffic import (
    NODE,
    connection_to,
    http_backends,
    http_get,
    spread,
    task,
    userspace_proxy,
    web,
)


async def until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert callable(check)
            if await check():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "never got there"
        await asyncio.sleep(0.05)


async def test_node_port_and_cluster_ip_round_robin_over_ready_endpoints(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.81", "127.0.0.82", "127.0.0.83"]
    async with (
        http_backends(addresses) as backends,
        await Registry.connect(url) as registry,
    ):
        record = await registry.create(web(backends[0].port))
        cluster_ip, node_port = record.service.cluster_ip, record.service.ports[0].node_port
        assert cluster_ip is not None and node_port is not None
        await (await registry.announcer()).announce(
            [task(f"w{i}", a) for i, a in enumerate(addresses)], ttl=30
        )
        async with userspace_proxy(url):

            async def three() -> bool:
                got = await spread(NODE, node_port, 30, backends)
                return all(n == 10 for n in got.values())

            await until(three)
            # A cluster IP is not this node's address: served on 127 and its last octets.
            assert await http_get(loopback_for(cluster_ip), 80) in addresses
            got = await spread(NODE, node_port, 3_000, backends)
            assert all(900 <= n <= 1_100 for n in got.values()), got  # round-robin: even


async def test_least_connections_prefers_the_idle_endpoint(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    addresses = ["127.0.0.84", "127.0.0.85"]
    async with (
        http_backends(addresses) as backends,
        await Registry.connect(url) as registry,
    ):
        node_port = (await registry.create(web(backends[0].port))).service.ports[0].node_port
        assert node_port is not None
        await (await registry.announcer()).announce(
            [task(f"w{i}", a) for i, a in enumerate(addresses)], ttl=30
        )
        async with userspace_proxy(url, "--balance", "least-connections"):
            await until(lambda: _answers(NODE, node_port))
            held = [await connection_to(backends[0], NODE, node_port)]
            await asyncio.sleep(0.5)  # the tries that landed elsewhere have closed
            # With one connection open on the first, the next ones go to the second.
            for _ in range(5):
                assert await http_get(NODE, node_port) == backends[1].address
            for _, writer in held:
                writer.close()


async def _answers(address: str, port: int) -> bool:
    await http_get(address, port)
    return True


async def test_no_endpoint_resets_at_once_and_a_withdrawn_one_drains(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    async with (
        http_backends(["127.0.0.86", "127.0.0.87"]) as (leaving, staying),
        await Registry.connect(url) as registry,
    ):
        node_port = (await registry.create(web(leaving.port))).service.ports[0].node_port
        assert node_port is not None
        async with userspace_proxy(url):
            started = time.monotonic()
            with pytest.raises(ConnectionError):
                await http_get(NODE, node_port)
            assert time.monotonic() - started < 1.0
            await (await registry.announcer()).announce([task("s", staying.address)], ttl=30)
            async with registry.announce(task("l", leaving.address), ttl=30):
                await until(lambda: _answers(NODE, node_port))
                held = await connection_to(leaving, NODE, node_port)
            await asyncio.sleep(1.0)  # withdrawn a second ago
            before = leaving.accepted
            for _ in range(50):
                assert await http_get(NODE, node_port) == staying.address
            assert leaving.accepted == before
            reader, writer = held
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.endswith(leaving.address.encode()), answer  # drained, not cut
            writer.close()


class _Echo(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's own UDP transport is not a DatagramTransport subclass in 3.11.)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.got.put_nowait(data)


async def test_udp_flows_reach_an_endpoint_and_come_back(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(
        lambda: _Echo(b"udp-1"), local_addr=("127.0.0.88", 0)
    )
    try:
        port = echo.get_extra_info("sockname")[1]
        async with await Registry.connect(url) as registry:
            node_port = (
                (await registry.create(web(port, protocol=Protocol.UDP))).service.ports[0].node_port
            )
            assert node_port is not None
            await (await registry.announcer()).announce([task("u", "127.0.0.88")], ttl=30)
            async with userspace_proxy(url):
                client = _Client()
                sender, _ = await loop.create_datagram_endpoint(
                    lambda: client, remote_addr=(NODE, node_port)
                )
                try:
                    for attempt in range(100):  # until the proxy has the endpoint
                        sender.sendto(f"ping {attempt}".encode())
                        try:
                            reply = await asyncio.wait_for(client.got.get(), 0.2)
                            break
                        except (TimeoutError, ConnectionRefusedError):
                            continue
                    else:
                        raise AssertionError("no UDP answer through the proxy")
                    assert reply.startswith(b"udp-1:ping"), reply
                finally:
                    sender.close()
    finally:
        echo.close()
