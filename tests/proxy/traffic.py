"""Real traffic for the proxy's tests: HTTP backends on loopback addresses, a plain
HTTP client, and ``nft`` run as someone else would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["Backend", "http_backends", "http_get", "nft"]


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
    peers: set[int] = field(default_factory=set)  # client ports of connections accepted
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        peer = writer.get_extra_info("peername")
        if peer:
            self.peers.add(int(peer[1]))
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
