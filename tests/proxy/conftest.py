"""The kernel and real traffic for the proxy's tests.

The kernel's tables are the machine's, not a test's: each test gets a table of its own
name, removed afterwards, and tests that program the kernel take a lock, so two xdist
workers never forward the same address at once. Where nftables cannot be used (not root,
no ``nft``), those tests are skipped and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.proxy.nftables import Nftables

_LOCK = Path("/tmp/skyflow-tests-nftables.lock")


def nftables_unusable() -> str | None:
    """Why the kernel mode cannot be tested here, or None."""
    why = Nftables.available()
    if why is not None:
        return why
    probe = f"skyflow_probe_{os.getpid()}"
    done = subprocess.run(
        ["nft", "-f", "-"],
        input=f"add table ip {probe}\ndelete table ip {probe}\n",
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"nft cannot change tables: {done.stderr.strip()}"


@pytest.fixture
def nft_table() -> Iterator[str]:
    """A table name of this test's own, the kernel to itself, and the table gone after."""
    why = nftables_unusable()
    if why is not None:
        pytest.skip(f"kernel mode not testable here: {why}")
    table = f"skyflow_t{uuid.uuid4().hex[:10]}"
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield table
        finally:
            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)


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
