"""The DNS server's sockets: UDP and TCP on one address and port, answering from a zone.

Every query is answered in the event loop that keeps the zone current, straight from
memory: nothing here waits on NATS, so an answer never waits on the server either, and
while the server is unreachable the zone (and so every answer) stays what was last known.

TCP follows RFC 7766: several queries per connection, answered in order. No client
can hold what others need (section 6.2.3):

- a connection waiting for a query is closed after ``TCP_IDLE_S``; a query must arrive
  whole within ``TCP_READ_S`` of its first byte, and an answer must leave within
  ``TCP_WRITE_S`` (a client that sends and never reads fills its socket, then times out);
- at most ``MAX_TCP_PER_CLIENT`` connections per client address and
  ``MAX_TCP_CONNECTIONS`` in all. A new connection beyond either limit is never
  refused: it closes the connection that has been idle longest (of that client, or of
  all), or if none is idle the one busy longest. So connections left open, or sending
  queries and never reading, are what gives way, and a new client is always answered.

Whatever a client sends, the worst it gets is a FORMERR or silence: an unexpected
error answering one query is logged (once per kind) and that query dropped; the server
goes on.
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

__all__ = [
    "MAX_TCP_CONNECTIONS",
    "MAX_TCP_PER_CLIENT",
    "TCP_IDLE_S",
    "TCP_READ_S",
    "TCP_WRITE_S",
    "DnsServer",
    "listen",
]

log = logging.getLogger(__name__)

TCP_IDLE_S = 10.0
TCP_READ_S = 5.0
TCP_WRITE_S = 5.0
MAX_TCP_CONNECTIONS = 128
MAX_TCP_PER_CLIENT = 32
_PORT_TRIES = 5  # for port 0: a free UDP port whose TCP twin is taken is tried again


@dataclass(eq=False)
class _Connection:
    """One TCP client connection, and since when it has waited for a query (idle) or
    been reading or answering one (busy)."""

    client: str
    writer: asyncio.StreamWriter
    since: float
    idle: bool = True

    def mark(self, idle: bool) -> None:
        self.idle, self.since = idle, asyncio.get_running_loop().time()

    def abort(self) -> None:
        self.writer.transport.abort()


@dataclass
class DnsServer:
    """A zone served on ``host:port`` over UDP and TCP; ``close()`` stops both."""

    zone: Zone
    host: str
    port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _connections: set[_Connection] = field(default_factory=set)
    _by_client: dict[str, set[_Connection]] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)
    evicted: int = 0  # connections closed to make room for new ones

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

    def _admit(self, connection: _Connection) -> None:
        """Make room for ``connection`` (closing others as the limits say), then count it."""
        mine = self._by_client.setdefault(connection.client, set())
        if len(mine) >= MAX_TCP_PER_CLIENT:
            self._evict(mine)
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            self._evict(self._connections)
        mine.add(connection)
        self._connections.add(connection)

    def _evict(self, among: set[_Connection]) -> None:
        """Close the connection idle longest among ``among``, or if none is idle the one
        busy longest."""
        victim = min(among, key=lambda c: (not c.idle, c.since))
        self._forget(victim)
        victim.abort()
        self.evicted += 1

    def _forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        mine = self._by_client.get(connection.client)
        if mine is not None:
            mine.discard(connection)
            if not mine:
                del self._by_client[connection.client]

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        connection = _Connection(client, writer, asyncio.get_running_loop().time())
        self._admit(connection)
        try:
            while True:
                connection.mark(idle=True)
                async with asyncio.timeout(TCP_IDLE_S):
                    prefix = await reader.readexactly(2)
                connection.mark(idle=False)
                async with asyncio.timeout(TCP_READ_S):
                    wire = await reader.readexactly(int.from_bytes(prefix, "big"))
                reply = self.answer(wire, tcp=True)
                if reply is None:
                    return  # not a query: nothing more to expect from this client
                writer.write(len(reply).to_bytes(2, "big") + reply)
                async with asyncio.timeout(TCP_WRITE_S):
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return  # idle, slow, not reading, gone, cut off mid-message, or evicted
        finally:
            self._forget(connection)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for connection in list(self._connections):
            self._forget(connection)
            connection.abort()
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
