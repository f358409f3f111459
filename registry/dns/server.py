"""The DNS server's sockets: UDP and TCP on one address and port, answering from a zone.

Every query is answered in the event loop that keeps the zone current, straight from
memory: nothing here waits on NATS, so an answer never waits on the server either, and
while the server is unreachable the zone (and so every answer) stays what was last known.

TCP follows RFC 7766: several queries per connection, answered in order; a connection
idle for ``TCP_IDLE_S`` is closed, and beyond ``MAX_TCP_CONNECTIONS`` new ones are
closed at once, so slow or silent clients cannot hold the server. Whatever a client
sends, the worst it gets is a FORMERR or silence: an unexpected error answering one
query is logged (once per kind) and that query dropped; the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from dataclasses import dataclass, field
from typing import cast

from registry.dns.responder import respond
from registry.dns.zone import Zone
from registry.errors import InvalidInput

__all__ = ["MAX_TCP_CONNECTIONS", "TCP_IDLE_S", "DnsServer", "listen"]

log = logging.getLogger(__name__)

TCP_IDLE_S = 10.0
MAX_TCP_CONNECTIONS = 128
_PORT_TRIES = 5  # for port 0: a free UDP port whose TCP twin is taken is tried again


@dataclass
class DnsServer:
    """A zone served on ``host:port`` over UDP and TCP; ``close()`` stops both."""

    zone: Zone
    host: str
    port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _reported: set[str] = field(default_factory=set)

    def answer(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The response to one query; None (dropped) if answering it failed."""
        try:
            return respond(self.zone, wire, tcp=tcp)
        except Exception as exc:  # a bug, not the client's doing: keep serving the rest
            kind = type(exc).__name__
            if kind not in self._reported:
                self._reported.add(kind)
                log.error("dropped a query that failed to answer: %s: %s", kind, exc)
            return None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_S):
                    length = int.from_bytes(await reader.readexactly(2), "big")
                    wire = await reader.readexactly(length)
                reply = self.answer(wire, tcp=True)
                if reply is None:
                    return  # not a query: nothing more to expect from this client
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return  # idle, gone, or cut off mid-message
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._connections):
            task.cancel()
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()

    async def __aenter__(self) -> DnsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (3.11's selector one does not subclass it).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.server.answer(data, tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for an earlier reply (the client went away): nothing to do


async def listen(zone: Zone, host: str, port: int) -> DnsServer:
    """Serve ``zone`` on ``host:port`` over UDP and TCP (port 0: a free port, the same
    for both); ``InvalidInput`` naming the address if it cannot be listened on."""
    loop = asyncio.get_running_loop()
    server = DnsServer(zone, host)
    for _ in range(_PORT_TRIES):
        try:
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(server), local_addr=(host, port)
            )
        except OSError as exc:
            raise _cannot_listen(host, port, exc) from None
        bound = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(server._serve_tcp, host, bound, reuse_address=True)
        except OSError as exc:
            udp.close()
            if port == 0 and exc.errno == errno.EADDRINUSE:
                continue
            raise _cannot_listen(host, port, exc) from None
        server._udp, server._tcp, server.port = udp, tcp, bound
        return server
    raise InvalidInput("listen", f"{host}:{port}", "found no port free for both UDP and TCP")


def _cannot_listen(host: str, port: int, exc: OSError) -> InvalidInput:
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EACCES and 0 < port < 1024:
        reason += " (ports below 1024 need privileges; try a port such as 8600)"
    return InvalidInput("listen", shown, f"cannot listen there: {reason}")
