"""The plan in user space: asyncio listeners that splice bytes to the backends.

For a node where the kernel's tables are out of reach (no root, no nftables): each
frontend is a TCP listener (and a UDP socket for UDP ports) in this process, and each new
connection (UDP: each client address, a *flow*) goes to a backend chosen round-robin or
by least connections. A frontend with no ready endpoint refuses at once: TCP connections
are reset, and its UDP socket is closed so the kernel answers ICMP port unreachable. A
backend that leaves gets no new connection from then on; the connections it has keep
going until they end (drain).

Unlike the kernel's forwarding, this lives and dies with the process. A cluster IP is not
an address of the node, so it cannot be bound without root: its frontend is served on a
loopback address instead, 127 and the cluster IP's last three octets (10.96.113.16:80 is
served on 127.96.113.16:80), and said once. Ports below 1024 need root: such a frontend is
reported and left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from registry.proxy.plan import Backend, Backends, Change, Frontend

__all__ = ["BALANCES", "Userspace", "loopback_for"]

Balance = Literal["round-robin", "least-connections"]
BALANCES: tuple[Balance, ...] = ("round-robin", "least-connections")
_READ = 64 * 1024
_HIGH_WATER = 256 * 1024
_UDP_IDLE_S = 30.0


def _bindable(address: str) -> bool:
    """Whether this node has ``address`` (a socket can be bound to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


def loopback_for(address: str) -> str:
    """Where a frontend whose address is not the node's is served: 127.b.c.d."""
    packed = ipaddress.IPv4Address(address).packed
    return str(ipaddress.IPv4Address(b"\x7f" + packed[1:]))


@dataclass
class _Pool:
    """A frontend's backends and how many connections each has open."""

    balance: Balance
    backends: Backends = ()
    open: dict[Backend, int] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> Backend | None:
        if not self.backends:
            return None
        if self.balance == "least-connections":
            return min(self.backends, key=lambda b: (self.open.get(b, 0), next(self._turn)))
        return self.backends[next(self._turn) % len(self.backends)]


class _Pipe(asyncio.Protocol):
    """One direction's sink: writes to ``peer``, with back-pressure both ways."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self._pending: list[bytes] = []
        self._on_lost = on_lost
        self.ended = False  # this side sent EOF

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self._pending.append(data)  # the backend is not connected yet
            return
        peer.transport.write(data)

    def flush_to(self, peer: _Pipe) -> None:
        self.peer = peer
        if peer.transport is not None:
            for data in self._pending:
                peer.transport.write(data)
            if self.ended:  # the client finished before the backend answered the connect
                with contextlib.suppress(OSError, RuntimeError):
                    peer.transport.write_eof()
        self._pending.clear()

    def eof_received(self) -> bool:
        self.ended = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            if peer.ended:  # both directions are done
                peer.transport.close()
                return False
            with contextlib.suppress(OSError, RuntimeError):
                peer.transport.write_eof()
        return True  # keep the other direction open (half close)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        self._on_lost()


class _TcpFrontend:
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    def protocol(self) -> asyncio.Protocol:
        backend = self.pool.pick()
        if backend is None:
            return _Refuse()
        pool = self.pool
        pool.open[backend] = pool.open.get(backend, 0) + 1
        done = False

        def lost() -> None:
            nonlocal done
            if not done:
                done = True
                pool.open[backend] = max(0, pool.open.get(backend, 1) - 1)

        client = _Pipe(lost)
        task = asyncio.get_running_loop().create_task(self._connect(client, backend, lost))
        self.connections.add(task)
        task.add_done_callback(self.connections.discard)
        return client

    async def _connect(self, client: _Pipe, backend: Backend, lost: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                lambda: _Pipe(lambda: None), backend.address, backend.port
            )
        except OSError:
            if client.transport is not None:
                _reset(client.transport)
            lost()
            return
        assert isinstance(upstream, _Pipe)
        upstream.peer = client
        client.flush_to(upstream)
        gone = client.transport is None or client.transport.is_closing()
        if gone and upstream.transport is not None:
            upstream.transport.close()


class _Refuse(asyncio.Protocol):
    """No ready endpoint: the connection is reset at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        _reset(transport)


def _reset(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _UdpFrontend(asyncio.DatagramProtocol):
    """One UDP port: each client address is a flow to one backend, kept while it talks."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], _UdpFlow] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's own UDP transport is not a DatagramTransport subclass in 3.11.)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client = (str(addr[0]), int(addr[1]))
        flow = self.flows.get(client)
        if flow is None:
            backend = self.pool.pick()
            if backend is None:
                return
            flow = _UdpFlow(self, client, backend)
            self.flows[client] = flow
            asyncio.get_running_loop().create_task(flow.open())
        flow.send(data)

    def close(self) -> None:
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, frontend: _UdpFrontend, client: tuple[str, int], backend: Backend) -> None:
        self.frontend, self.client, self.backend = frontend, client, backend
        self.transport: asyncio.DatagramTransport | None = None
        self._queue: list[bytes] = []
        self._idle: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(
                lambda: self, remote_addr=(self.backend.address, self.backend.port)
            )
        except OSError:
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's own UDP transport is not a DatagramTransport subclass in 3.11.)
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self._queue:
            self.transport.sendto(data)
        self._queue.clear()
        self._touch()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self._queue.append(data)
        else:
            self.transport.sendto(data)
            self._touch()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.frontend.transport is not None:
            self.frontend.transport.sendto(data, self.client)
        self._touch()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(_UDP_IDLE_S, self.close)

    def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.transport is not None:
            self.transport.close()
        self.frontend.flows.pop(self.client, None)


@dataclass
class _Served:
    frontend: Frontend
    pool: _Pool
    bound: str  # the address it listens on
    tcp: _TcpFrontend | None = None
    udp: _UdpFrontend | None = None


class Userspace:
    """The user-space forwarder (``--mode userspace``): the same plan, in this process."""

    def __init__(
        self,
        balance: Balance = "round-robin",
        on_problem: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.balance = balance
        self._on_problem = on_problem
        self._served: dict[Frontend, _Served] = {}
        self._left_out: set[Frontend] = set()

    def where(self, frontend: Frontend) -> str | None:
        """The address ``frontend`` is served on, if it is."""
        served = self._served.get(frontend)
        return served.bound if served is not None else None

    async def sync(self, plan: Mapping[Frontend, Backends]) -> None:
        changes = [
            Change(f, s.pool.backends, None) for f, s in self._served.items() if f not in plan
        ]
        changes += [Change(f, None, b) for f, b in plan.items()]
        await self.apply(changes)

    async def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            frontend, after = change.frontend, change.after
            served = self._served.get(frontend)
            if after is None:
                self._left_out.discard(frontend)
                if served is not None:
                    del self._served[frontend]
                    await self._stop(served)
                continue
            if served is None:
                if frontend.protocol == "sctp":
                    self._report(frontend, "SCTP is not forwarded in user space")
                    continue
                served = await self._start(frontend, _Pool(self.balance, after))
                if served is None:
                    continue
                self._served[frontend] = served
            served.pool.backends = after
            try:
                await self._reconcile_udp(served)
            except OSError as exc:
                self._report(frontend, f"cannot listen on {served.bound}: {exc.strerror}")

    async def holds(self, plan: Mapping[Frontend, Backends]) -> bool:
        wanted = {f: b for f, b in plan.items() if f not in self._left_out}
        have = {f: s.pool.backends for f, s in self._served.items()}
        serving = all(
            s.tcp is None or (s.tcp.server is not None and s.tcp.server.is_serving())
            for s in self._served.values()
        )
        return have == wanted and serving

    async def close(self) -> None:
        for served in list(self._served.values()):
            await self._stop(served)
        self._served.clear()

    async def _start(self, frontend: Frontend, pool: _Pool) -> _Served | None:
        address = frontend.address
        if not _bindable(address):
            address = loopback_for(address)
            self._on_problem(
                f"{frontend} is served on {address}:{frontend.port} "
                f"({frontend.address} is not an address of this node)"
            )
        served = _Served(frontend, pool, address)
        try:
            if frontend.protocol == "tcp":
                served.tcp = _TcpFrontend(pool)
                loop = asyncio.get_running_loop()
                served.tcp.server = await loop.create_server(
                    served.tcp.protocol, address, frontend.port, reuse_address=True
                )
            await self._reconcile_udp(served)
        except OSError as exc:
            self._report(frontend, f"cannot listen on {address}:{frontend.port}: {exc.strerror}")
            return None
        return served

    async def _reconcile_udp(self, served: _Served) -> None:
        """A UDP frontend listens only while it has a backend (else ICMP unreachable)."""
        if served.frontend.protocol != "udp":
            return
        if served.pool.backends and served.udp is None:
            udp = _UdpFrontend(served.pool)
            loop = asyncio.get_running_loop()
            await loop.create_datagram_endpoint(
                lambda: udp, local_addr=(served.bound, served.frontend.port)
            )
            served.udp = udp
        elif not served.pool.backends and served.udp is not None:
            served.udp.close()
            served.udp = None

    async def _stop(self, served: _Served) -> None:
        if served.tcp is not None and served.tcp.server is not None:
            served.tcp.server.close()  # open connections drain: they are not cut
        if served.udp is not None:
            served.udp.close()

    def _report(self, frontend: Frontend, why: str) -> None:
        if frontend not in self._left_out:
            self._left_out.add(frontend)
            self._on_problem(f"{frontend} not forwarded: {why}")
