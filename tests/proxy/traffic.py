"""Real traffic for the proxy's tests: the service and tasks they route, HTTP backends on
loopback addresses, a plain HTTP client, and ``nft`` run as someone else would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from events import Port, Service, ServiceType
from events.choices import Protocol
from events.task import Task
from tests.helpers import Lines, running

__all__ = [
    "NODE",
    "NS",
    "Backend",
    "connection_to",
    "http_backends",
    "http_get",
    "nft",
    "spread",
    "task",
    "userspace_proxy",
    "web",
]

NS = "shop"
NODE = "127.0.0.1"  # the node the user-space proxy serves node ports on


def userspace_proxy(url: str, *extra: str) -> contextlib.AbstractAsyncContextManager[Lines]:
    """``skyctl proxy --mode userspace`` on ``NODE``, once it forwards; stopped after."""
    return running(
        "proxy",
        "--mode",
        "userspace",
        "--node-address",
        NODE,
        *extra,
        url=url,
        ready="proxy: forwarding",
    )


def web(
    port: int,
    kind: ServiceType = ServiceType.NODE_PORT,
    app: str = "web",
    protocol: Protocol = Protocol.TCP,
) -> Service:
    """The service the proxy tests send traffic to: port 80 to ``port`` on tasks ``app``."""
    return Service(
        namespace=NS,
        name="web",
        type=kind,
        selector={"app": app},
        ports=(Port(port=80, target_port=port, protocol=protocol),),
    )


def task(name: str, address: str, app: str = "web") -> Task:
    return Task(namespace=NS, name=name, labels={"app": app}, address=address)


async def nft(*args: str, script: str | None = None, check: bool = True) -> str:
    """Run ``nft`` as someone else would (another tool, an operator); its stdout."""
    proc = await asyncio.create_subprocess_exec(
        "nft",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(script.encode() if script is not None else None)
    if check and proc.returncode != 0:
        raise AssertionError(f"nft {' '.join(args)}: {err.decode()}")
    return out.decode()


@dataclass
class Backend:
    """One HTTP backend on its own loopback address: it answers its name, and keeps
    track of the connections it was given."""

    address: str
    port: int
    accepted: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readuntil(b"\r\n\r\n")
                body = self.address.encode()
                writer.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def http_backends(addresses: list[str], port: int = 0) -> AsyncIterator[list[Backend]]:
    """HTTP backends on ``addresses``, all on one port (free on every one of them)."""
    for _ in range(20):
        backends: list[Backend] = []
        try:
            for address in addresses:
                backend = Backend(address, port)
                backend.server = await asyncio.start_server(backend.handle, address, port)
                port = backend.server.sockets[0].getsockname()[1]
                backend.port = port
                backends.append(backend)
        except OSError:
            for backend in backends:
                assert backend.server is not None
                backend.server.close()
            port = 0
            continue
        try:
            yield backends
        finally:
            for backend in backends:
                assert backend.server is not None
                backend.server.close()
        return
    raise RuntimeError(f"no port free on all of {addresses}")


async def http_get(address: str, port: int, timeout: float = 5.0) -> str:
    """The body a plain HTTP/1.0 GET gets (raises ConnectionRefusedError if refused)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), response[:200]
    return body.decode()


async def spread(address: str, port: int, count: int, backends: list[Backend]) -> dict[str, int]:
    """Bodies of ``count`` new connections (20 at a time), by backend."""
    got: dict[str, int] = {b.address: 0 for b in backends}
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            queue.pop()
            body = await http_get(address, port)
            got[body] = got.get(body, 0) + 1

    await asyncio.gather(*(worker() for _ in range(20)))
    return got


async def connection_to(
    backend: Backend, address: str, port: int = 80
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An open connection through ``address`` that landed on ``backend`` (opened one at a
    time: the one ``backend`` accepts next is ours)."""
    for _ in range(100):
        before = backend.accepted
        reader, writer = await asyncio.open_connection(address, port)
        for _ in range(50):
            if backend.accepted > before:
                return reader, writer
            await asyncio.sleep(0.01)
        writer.close()
    raise AssertionError(f"no connection landed on {backend.address}")
