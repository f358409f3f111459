"""The proxy's kernel mode: how fast a change reaches the kernel, what a large table
costs, and what forwarding costs a connection. Needs root and ``nft``; elsewhere the rows
are left out and the reason printed.

- **Sync latency.** A proxy (in this process) follows 50 services; tasks join and leave
  them, 20 changes a second, one at a time; each timed from the Resolver handing the
  change over to the kernel's table holding it (p50, p99). Then one service's endpoints
  changing back to back (every fourth change before a tidy pays the kernel's deletion
  wait). Baseline: one ``nft -f`` transaction adding one element, the floor of any change.
- **Scale.** 10,000 services and 50,000 endpoints: the whole table written at start, and
  one endpoint change applied then, beside the same change with 10 services (an
  incremental change must not cost what a rewrite does).
- **Data path.** New HTTP connections per second (a new connection each request, 32 at a
  time) and bulk MB/s through a cluster IP, beside the same straight to the backend, in
  alternating rounds; client and backend are separate processes.

    python -m benchmarks.proxy                 # ~40 s
    python -m benchmarks.proxy --services 1000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.commands import free_port
from benchmarks.report import Result, Run, percentile
from events import Port, Service, ServiceType
from events.task import Task
from registry.client import Registry
from registry.discovery.announce import Announcement
from registry.jetstream.server import NatsServer
from registry.proxy.nftables import Nftables
from registry.proxy.plan import Backend, Frontend, Scope, Table
from registry.proxy.runner import Proxy, Synced
from registry.proxy.transport import Command, open_transport

__all__ = ["main", "proxy_scenarios"]

TABLE = "skyflow_bench"
BACKEND = "127.0.0.61"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _scope() -> Scope:
    return Scope(ipaddress.IPv4Network("10.96.0.0/12"), 30000, 32767, ("127.0.0.1",))


async def sync_latency(run: Run, changes: int) -> None:
    kernel = Nftables(TABLE)
    floor = [
        await _nft_ms(f"add element ip {TABLE}_floor s {{ 10.0.0.{i + 1} }}\n") for i in range(50)
    ]
    await _nft_ms(f"delete table ip {TABLE}_floor\n")
    spread = await _changes(kernel, changes, services=50, pause=0.05)
    flapping = await _changes(kernel, min(changes, 100), services=1, pause=0.0)
    await kernel.cleanup()
    kernel.close()
    note = "baseline: one `nft -f` transaction adding one element (the floor)"
    for q in (50, 99):
        run.add(
            Result(
                f"proxy sync: endpoint change seen -> kernel table updated (p{q})",
                percentile(spread, q),
                percentile(floor, q),
                "ms",
                "absolute",
                20.0 if q == 99 else None,
                len(spread),
                f"{note}; tasks joining and leaving 50 services, 20 changes/s",
            )
        )
    run.add(
        Result(
            "proxy sync: one service's endpoints changing back to back (p99)",
            percentile(flapping, 99),
            percentile(floor, 99),
            "ms",
            "absolute",
            None,
            len(flapping),
            "every 4th change to one frontend before a tidy pays the kernel's deletion wait",
        )
    )


async def _changes(kernel: Nftables, changes: int, services: int, pause: float) -> list[float]:
    """ms from the Resolver handing over an endpoint change to the kernel holding it, for
    ``changes`` joins and leaves spread over ``services`` (``pause`` s apart)."""
    seen: list[float] = []
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        async with (
            await Registry.connect(server.url) as registry,
            registry.resolver() as resolver,
        ):
            for k in range(services):
                await registry.create(
                    Service(
                        namespace="bench",
                        name=f"web{k}",
                        selector={"app": f"web{k}"},
                        ports=(Port(port=80, target_port=8080),),
                    )
                )
            applied = asyncio.Event()

            def synced(done: Synced) -> None:
                if not done.full:
                    seen.append(done.seconds * 1000)
                    applied.set()

            proxy = Proxy(kernel, _scope(), check_every=3600, on_synced=synced)
            running = asyncio.create_task(proxy.run(resolver, registry.log))
            await proxy.loaded.wait()
            announcer = await registry.announcer()
            live: dict[int, list[Announcement]] = {}
            for i in range(changes):
                k = i % services
                applied.clear()
                if k in live:
                    await announcer.withdraw(live.pop(k), timeout=10)
                else:
                    task = Task(
                        namespace="bench",
                        name=f"t{k}",
                        labels={"app": f"web{k}"},
                        address="10.1.0.1",
                    )
                    live[k] = await announcer.announce([task], ttl=60)
                await asyncio.wait_for(applied.wait(), 10)
                await asyncio.sleep(pause)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    return seen


async def _nft_ms(script: str) -> float:
    """Milliseconds of one ``nft -f -`` transaction (made in a table of its own)."""
    header = f"add table ip {TABLE}_floor\nadd set ip {TABLE}_floor s {{ type ipv4_addr ; }}\n"
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "nft", "-f", "-", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate(
        (header if "delete" not in script else "").encode() + script.encode()
    )
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    return (time.perf_counter() - started) * 1000


def _plan(services: int, per_service: int) -> Table:
    table = Table()
    network = ipaddress.IPv4Network("10.96.0.0/12")
    for i in range(services):
        vip = str(network[i + 1])
        backends = tuple(
            sorted(
                Backend(str(ipaddress.IPv4Address(0x0A800000 + i * 8 + k)), 8080)
                for k in range(per_service)
            )
        )
        table.update(("bench", f"s{i}"), {Frontend(vip, "tcp", 80): backends})
    return table


async def _one_change_ms(kernel: Nftables, table: Table, rounds: int) -> float:
    """Median ms of one endpoint change on service 0 (a backend replaced, then back)."""
    times = []
    key = ("bench", "s0")
    frontend = Frontend(str(ipaddress.IPv4Network("10.96.0.0/12")[1]), "tcp", 80)
    backends = table.effective()[frontend]
    for i in range(rounds):
        swapped = (*backends[:-1], Backend("10.200.0.1", 8080)) if i % 2 == 0 else backends
        started = time.perf_counter()
        await kernel.apply(table.update(key, {frontend: tuple(sorted(swapped))}))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def scale(run: Run, services: int, endpoints: int, rounds: int) -> None:
    per = max(1, endpoints // services)
    changes: dict[str, tuple[float, float]] = {}
    full_s = 0.0
    for name, transport in (("library", open_transport()), ("program", Command())):
        kernel = Nftables(TABLE, transport)
        small = _plan(10, per)
        await kernel.sync(small.effective())
        small_change = await _one_change_ms(kernel, small, rounds)
        big = _plan(services, per)
        started = time.perf_counter()
        await kernel.sync(big.effective())
        if name == "library":
            full_s = time.perf_counter() - started
        assert await kernel.holds(big.effective())
        await asyncio.sleep(2)  # the kernel frees the table the sync replaced
        changes[name] = (await _one_change_ms(kernel, big, rounds), small_change)
        await kernel.cleanup()
        kernel.close()
    run.add(
        Result(
            f"proxy full sync at start, {services:,} services / {endpoints:,} endpoints",
            full_s,
            None,
            "s",
            "absolute",
            5.0,
            1,
            "one transaction replacing the table",
        )
    )
    for name, limit in (("library", 1.5), ("program", None)):
        big_change, small_change = changes[name]
        run.add(
            Result(
                f"proxy: one endpoint change with {services:,} services (via {name})",
                big_change,
                small_change,
                "ms",
                "time",
                limit,
                rounds,
                "baseline: the same change with 10 services; medians; "
                + ("libnftables kept open" if name == "library" else "an `nft` process each"),
            )
        )


_CLIENT = r"""
import asyncio, sys, time
host, port, mode, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
async def requests():
    done = 0
    end = time.perf_counter() + seconds
    async def worker():
        nonlocal done
        while time.perf_counter() < end:
            r, w = await asyncio.open_connection(host, port)
            w.write(b"GET / HTTP/1.0\r\n\r\n"); await w.drain()
            await r.read(); w.close(); done += 1
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(32)))
    print(done / (time.perf_counter() - started))
async def bulk():
    r, w = await asyncio.open_connection(host, port)
    w.write(b"BULK / HTTP/1.0\r\n\r\n"); await w.drain()
    total, started = 0, time.perf_counter()
    while chunk := await r.read(1 << 20):
        total += len(chunk)
    print(total / (time.perf_counter() - started) / 1e6)
asyncio.run(requests() if mode == "requests" else bulk())
"""

_SERVER = r"""
import asyncio, sys
BLOB = b"x" * (1 << 20)
async def handle(r, w):
    try:
        await serve(r, w)
    except (OSError, asyncio.IncompleteReadError):
        w.close()  # a client that left (wrk at the end of a round)
async def serve(r, w):
    line = await r.readuntil(b"\r\n\r\n")
    if line.startswith(b"BULK"):
        w.write(b"HTTP/1.0 200 OK\r\n\r\n")
        for _ in range(512):
            w.write(BLOB); await w.drain()
    else:
        w.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await w.drain(); w.close()
async def main():
    server = await asyncio.start_server(handle, sys.argv[1], 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def _client(host: str, port: int, mode: str, seconds: float) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CLIENT, host, str(port), mode, str(seconds)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout)


async def data_path(run: Run, rounds: int, seconds: float) -> None:
    backend = subprocess.Popen(  # noqa: ASYNC220 (started once; read in a thread)
        [sys.executable, "-c", _SERVER, BACKEND], stdout=subprocess.PIPE, text=True
    )
    try:
        assert backend.stdout is not None
        port = int(await asyncio.to_thread(backend.stdout.readline))
        vip = "10.96.0.250"
        kernel = Nftables(TABLE)
        await kernel.sync({Frontend(vip, "tcp", 80): (Backend(BACKEND, port),)})
        results: dict[str, dict[str, list[float]]] = {
            m: {"direct": [], "vip": []} for m in ("requests", "bulk")
        }
        for _ in range(rounds):
            for mode in ("requests", "bulk"):
                for via, (host, to) in (("direct", (BACKEND, port)), ("vip", (vip, 80))):
                    value = await asyncio.to_thread(_client, host, to, mode, seconds)
                    results[mode][via].append(value)
        await kernel.cleanup()
        kernel.close()
    finally:
        backend.kill()
        backend.wait()
    _rate_rows(
        run,
        {m: (results[m]["vip"], results[m]["direct"]) for m in results},
        {
            "requests": "new connections/s through a cluster IP (kernel)",
            "bulk": "bulk MB/s through a cluster IP (kernel)",
        },
        0.9,
        "baseline: the same client straight to the backend; alternating rounds, medians",
    )


def _rate_rows(
    run: Run,
    measured: dict[str, tuple[list[float], list[float]]],
    labels: dict[str, str],
    limit: float,
    note: str,
) -> None:
    """One "rate" row per mode (requests, bulk): the medians of ours and the baseline's
    alternating rounds."""
    units = {"requests": "req/s", "bulk": "MB/s"}
    for mode, (ours, baseline) in measured.items():
        median = statistics.median
        run.add(
            Result(
                labels[mode],
                median(ours),
                median(baseline),
                units[mode],
                "rate",
                limit,
                len(ours),
                note,
            )
        )


_HAPROXY = """global
    maxconn 8192
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen bench
    bind 127.0.0.1:{port}
    balance roundrobin
    server backend {backend}:{backend_port}
"""


def _wrk(host: str, port: int, seconds: float) -> float:
    """Requests/s of ``wrk`` with a new connection per request (32 at a time)."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{seconds:g}s",
            "-H",
            "Connection: close",
            f"http://{host}:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    return float(line.split()[1])


async def userspace_vs_haproxy(run: Run, rounds: int, seconds: float) -> None:
    import shutil

    missing = [tool for tool in ("haproxy", "wrk") if shutil.which(tool) is None]
    if missing:
        log(
            f"proxy: userspace rows left out: {', '.join(missing)} not installed "
            "(apt-get install haproxy wrk)"
        )
        return
    backend = subprocess.Popen(  # noqa: ASYNC220 (started once; read in a thread)
        [sys.executable, "-c", _SERVER, BACKEND], stdout=subprocess.PIPE, text=True
    )
    procs: list[subprocess.Popen[str]] = [backend]
    try:
        assert backend.stdout is not None
        port = int(await asyncio.to_thread(backend.stdout.readline))
        with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
            async with await Registry.connect(server.url) as registry:
                made = await registry.create(
                    Service(
                        namespace="bench",
                        name="web",
                        type=ServiceType.NODE_PORT,
                        selector={"app": "web"},
                        ports=(Port(port=80, target_port=port),),
                    )
                )
                node_port = made.service.ports[0].node_port
                assert node_port is not None
                task = Task(namespace="bench", name="b", labels={"app": "web"}, address=BACKEND)
                await (await registry.announcer()).announce([task], ttl=60)
                proxy = subprocess.Popen(  # noqa: ASYNC220
                    [
                        sys.executable,
                        "-m",
                        "cli",
                        "proxy",
                        "--mode",
                        "userspace",
                        "--node-address",
                        "127.0.0.1",
                    ],
                    env={**os.environ, "NATS_URL": server.url},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                procs.append(proxy)
                assert proxy.stdout is not None
                await asyncio.to_thread(proxy.stdout.readline)  # "proxy: forwarding ..."
                ha_port = free_port()
                config = Path(folder) / "haproxy.cfg"
                config.write_text(_HAPROXY.format(port=ha_port, backend=BACKEND, backend_port=port))
                procs.append(
                    subprocess.Popen(  # noqa: ASYNC220
                        ["haproxy", "-db", "-f", str(config)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        text=True,
                    )
                )
                await asyncio.sleep(1.0)
                got: dict[str, dict[str, list[float]]] = {
                    m: {"ours": [], "haproxy": []} for m in ("requests", "bulk")
                }
                for _ in range(rounds):
                    for who, at in (("ours", node_port), ("haproxy", ha_port)):
                        got["requests"][who].append(
                            await asyncio.to_thread(_wrk, "127.0.0.1", at, seconds)
                        )
                        got["bulk"][who].append(
                            await asyncio.to_thread(_client, "127.0.0.1", at, "bulk", seconds)
                        )
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    _rate_rows(
        run,
        {m: (got[m]["ours"], got[m]["haproxy"]) for m in got},
        {
            "requests": "userspace proxy: new connections/s (wrk, Connection: close)",
            "bulk": "userspace proxy: bulk MB/s (one connection, 512 MiB)",
        },
        0.5,
        "baseline: HAProxy 2.6 (Debian) in TCP mode to the same backend; "
        "alternating rounds, medians",
    )


async def proxy_scenarios(
    run: Run, *, changes: int, services: int, endpoints: int, rounds: int, seconds: float
) -> None:
    log(f"proxy: userspace mode against HAProxy, {rounds} alternating rounds of {seconds:g} s")
    await userspace_vs_haproxy(run, rounds, seconds)
    why = Nftables.available()
    if why is not None:
        log(f"proxy: kernel mode rows left out: {why}")
        return
    log(f"proxy: sync latency over {changes} endpoint changes")
    await sync_latency(run, changes)
    log(f"proxy: {services:,} services, {endpoints:,} endpoints")
    await scale(run, services, endpoints, rounds=20)
    log(f"proxy: data path, {rounds} alternating rounds of {seconds:g} s")
    await data_path(run, rounds, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    run = Run.started("proxy", argv, {"services": args.services, "endpoints": args.endpoints})
    asyncio.run(
        proxy_scenarios(
            run,
            changes=args.changes,
            services=args.services,
            endpoints=args.endpoints,
            rounds=args.rounds,
            seconds=args.seconds,
        )
    )
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())


if __name__ == "__main__":
    main()
