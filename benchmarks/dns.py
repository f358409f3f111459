"""DNS: queries/s and p99 latency of ``skyctl dns`` for a service with 10 endpoints,
beside a server built on the same DNS library (dnspython, the same asyncio UDP loop)
that returns a fixed answer of the same size, queried the same way in the same run;
then the same victim queries with and without a hostile tenant: a service of
``BIG_ENDPOINTS`` announced tasks in another namespace, queried ``HAMMER_RATE`` times a
second by a client of its own (the p99 of the victim's queries, alternating rounds).

Three processes per measurement, so no two share an event loop: the server, and a load
generator that keeps ``WINDOW`` queries in flight over UDP for a few seconds, timing each
from send to reply. Rounds alternate between the two servers, so both see the same
machine load. The baseline is what the library costs by itself (parse the query, make
the response, render it); the gap to it is what the registry's zone adds.

    python -m benchmarks.dns                  # the DNS rows alone, on a server of their own
    python -m benchmarks.dns --seconds 1      # shorter rounds

``python -m benchmarks`` runs the same rows within the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict, cast

import dns.message
import dns.name
import dns.rcode
import dns.rrset

from benchmarks.report import Result, Run, median, percentile
from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.errors import AlreadyExists
from registry.jetstream.server import NatsServer

__all__ = ["dns_scenario", "main", "starvation_scenario"]

ENDPOINTS = 10
WINDOW = 8  # queries in flight
NAMESPACE = "bench-dns"
QNAME = f"web.{NAMESPACE}.svc.skyflow."
BIG_ENDPOINTS = 20_000
HAMMER_RATE = 20  # queries/s for the big service
BIG_NAMESPACE = "bench-dns-big"
BIG_QNAME = f"web.{BIG_NAMESPACE}.svc.skyflow."
_SERVING = re.compile(r"^dns: serving \S+ on 127\.0\.0\.1:(\d+) ")
_FIXED = re.compile(r"^fixed: serving on 127\.0\.0\.1:(\d+)$")
_ADDRESSES = [f"10.53.0.{i + 1}" for i in range(ENDPOINTS)]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the baseline server -------------------------------------------------------------------


class _Fixed(asyncio.DatagramProtocol):
    """Every query answered with the same 10 A records, through the same library calls
    ``registry.dns.responder`` makes: parse, make the response, render within the size."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answer = dns.rrset.from_text_list(QNAME, 5, "IN", "A", _ADDRESSES)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query, our_payload=1232)
        response.answer.append(self.answer)
        size = 512 if query.edns < 0 else max(512, min(query.payload, 1232))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(max_size=size, prefer_truncation=True), addr)


async def serve_fixed() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Fixed, local_addr=("127.0.0.1", 0))
    print(f"fixed: serving on 127.0.0.1:{transport.get_extra_info('sockname')[1]}", flush=True)
    await asyncio.Event().wait()


# -- the load generator ----------------------------------------------------------------------


class Load(TypedDict):
    """What one round of the load generator measured."""

    answered: int
    seconds: float
    lost: int
    latencies: list[float]  # seconds, send to reply


def load(port: int, seconds: float, window: int) -> Load:
    """``window`` queries in flight for ``seconds``; each reply's latency. Every 200th
    reply is parsed and checked to hold the 10 addresses."""
    query = dns.message.make_query(QNAME, "A")
    wires = []
    for i in range(1024):
        query.id = i
        wires.append(query.to_wire())
    sent: dict[int, float] = {}
    latencies: list[float] = []
    lost = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.5)
        counter = 0

        def send() -> None:
            nonlocal counter
            counter += 1
            ident = counter % len(wires)
            sent[ident] = time.perf_counter()
            sock.send(wires[ident])

        started = time.perf_counter()
        deadline = started + seconds
        for _ in range(window):
            send()
        while True:
            try:
                reply = sock.recv(4096)
            except TimeoutError:  # lost: fill the window again
                lost += len(sent)
                sent.clear()
                for _ in range(window):
                    send()
                continue
            now = time.perf_counter()
            began = sent.pop(int.from_bytes(reply[:2], "big"), None)
            if began is None:
                continue
            latencies.append(now - began)
            if len(latencies) % 200 == 1:
                response = dns.message.from_wire(reply)
                assert response.rcode() == dns.rcode.NOERROR, response
                assert sorted(r.to_text() for r in response.answer[0]) == sorted(_ADDRESSES)
            if now >= deadline:
                break
            send()
        elapsed = time.perf_counter() - started
    return Load(answered=len(latencies), seconds=elapsed, lost=lost, latencies=latencies)


def hammer(port: int, seconds: float, rate: float) -> dict[str, int]:
    """``rate`` queries a second for the big service, each answer checked to hold
    addresses and fit in 512 bytes; how many were answered, and how many were not."""
    query = dns.message.make_query(BIG_QNAME, "A")
    answered = lost = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(2.0)
        deadline = time.perf_counter() + seconds
        due = time.perf_counter()
        while due < deadline:
            sock.send(query.to_wire())
            try:
                reply = sock.recv(4096)
            except TimeoutError:
                lost += 1
            else:
                response = dns.message.from_wire(reply)
                assert response.answer and len(reply) <= 512, response
                answered += 1
            due += 1 / rate
            time.sleep(max(0.0, due - time.perf_counter()))
    return {"answered": answered, "lost": lost}


# -- the scenario ------------------------------------------------------------------------------


def _started(
    command: list[str], env: dict[str, str], ready: re.Pattern[str]
) -> tuple[subprocess.Popen[str], int]:
    """A server process, and the port from its ready line."""
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = ready.match(line)
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"{' '.join(command)} did not start: {line!r} {err}")
    return proc, int(match.group(1))


def _measure(port: int, seconds: float, env: dict[str, str]) -> Load:
    """One round of the load generator, in a process of its own."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.dns", "load", str(port), str(seconds), str(WINDOW)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the DNS load generator failed: {proc.stderr}")
    return cast(Load, json.loads(proc.stdout))


def _hostile(port: int, seconds: float, env: dict[str, str]) -> tuple[Load, dict[str, int]]:
    """One round of the load generator while the hammer queries the big service."""
    command = [sys.executable, "-m", "benchmarks.dns", "hammer", str(port)]
    proc = subprocess.Popen(
        [*command, str(seconds + 1), str(HAMMER_RATE)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # the hammer is under way
    victim = _measure(port, seconds, env)
    out, err = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the DNS hammer failed: {err}")
    return victim, cast(dict[str, int], json.loads(out))


async def starvation_scenario(
    url: str, run: Run, seconds: float, rounds: int = 3, endpoints: int = BIG_ENDPOINTS
) -> None:
    """The victim namespace's p99 with and without a service of ``endpoints`` tasks
    queried ``HAMMER_RATE`` times a second, from one ``skyctl dns``, in alternating rounds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    env["NATS_URL"] = url
    async with await Registry.connect(url, actor="bench@host") as registry:
        for namespace in (NAMESPACE, BIG_NAMESPACE):
            with contextlib.suppress(AlreadyExists):  # made by the row before
                await registry.create(
                    Service(
                        namespace=namespace,
                        name="web",
                        selector={"app": "web"},
                        ports=(Port(port=80, target_port=8080),),
                    )
                )
        announcer = await registry.announcer()
        # A TTL longer than the scenario: what is measured is answering, not renewals.
        victims = [
            Task(namespace=NAMESPACE, name=f"web-{i}", labels={"app": "web"}, address=address)
            for i, address in enumerate(_ADDRESSES)
        ]
        await announcer.announce(victims, ttl=600)
        log(f"dns: announcing {endpoints:,} tasks behind one service")
        big = [
            Task(
                namespace=BIG_NAMESPACE,
                name=f"big-{i}",
                labels={"app": "web"},
                address=f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}",
            )
            for i in range(endpoints)
        ]
        await announcer.announce(big, ttl=600)
        ours, port = _started(
            [sys.executable, "-m", "cli", "dns", "--listen", "127.0.0.1:0"], env, _SERVING
        )
        try:
            idle: list[Load] = []
            hostile: list[Load] = []
            hammered = {"answered": 0, "lost": 0}
            for i in range(rounds):
                for name in ("idle", "hostile") if i % 2 == 0 else ("hostile", "idle"):
                    log(f"dns: starvation round {i + 1}/{rounds}, {name}, {seconds:g} s")
                    if name == "idle":
                        idle.append(await asyncio.to_thread(_measure, port, seconds, env))
                        continue
                    victim, counts = await asyncio.to_thread(_hostile, port, seconds, env)
                    hostile.append(victim)
                    for key in hammered:
                        hammered[key] += counts[key]
        finally:
            ours.terminate()
            ours.communicate(timeout=10)
        await announcer.close()

    def p99(samples: list[Load]) -> float:
        return percentile([t * 1000 for s in samples for t in s["latencies"]], 99)

    run.add(
        Result(
            f"DNS p99 for a victim namespace with and without a {endpoints:,}-endpoint "
            f"service being queried {HAMMER_RATE}/s",
            p99(hostile),
            p99(idle),
            "ms",
            "time",
            2.0,
            samples=sum(s["answered"] for s in hostile),
            note=(
                f"one skyctl dns; victim: UDP, {WINDOW} in flight, {rounds} alternating rounds "
                f"of {seconds:g} s; the big service's {hammered['answered']} queries all "
                f"answered with addresses in 512 bytes ({hammered['lost']} lost)"
            ),
        )
    )


async def dns_scenario(url: str, run: Run, seconds: float, rounds: int = 3) -> None:
    """The two rows: queries/s (target >= 0.7x the fixed server's) and p99 latency."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    env["NATS_URL"] = url
    async with await Registry.connect(url, actor="bench@host") as registry:
        await registry.create(
            Service(
                namespace=NAMESPACE,
                name="web",
                selector={"app": "web"},
                ports=(Port(port=80, target_port=8080),),
            )
        )
        tasks = [
            Task(namespace=NAMESPACE, name=f"web-{i}", labels={"app": "web"}, address=address)
            for i, address in enumerate(_ADDRESSES)
        ]
        await (await registry.announcer()).announce(tasks, ttl=60)
        ours, ours_port = _started(
            [sys.executable, "-m", "cli", "dns", "--listen", "127.0.0.1:0"], env, _SERVING
        )
        fixed, fixed_port = _started([sys.executable, "-m", "benchmarks.dns", "fixed"], env, _FIXED)
        try:
            samples: dict[str, list[Load]] = {"ours": [], "fixed": []}
            for i in range(rounds):
                order = [("ours", ours_port), ("fixed", fixed_port)]
                for name, port in order if i % 2 == 0 else reversed(order):
                    log(f"dns: round {i + 1}/{rounds}, {name}, {seconds:g} s")
                    samples[name].append(await asyncio.to_thread(_measure, port, seconds, env))
        finally:
            for proc in (ours, fixed):
                proc.terminate()
                proc.communicate(timeout=10)

    def rate(name: str) -> float:
        return median([s["answered"] / s["seconds"] for s in samples[name]])

    def p99(name: str) -> float:
        pooled = [t * 1000 for s in samples[name] for t in s["latencies"]]
        return percentile(pooled, 99)

    count = sum(s["answered"] for s in samples["ours"])
    note = (
        f"UDP, {WINDOW} in flight, {rounds} alternating rounds of {seconds:g} s; baseline: "
        "dnspython answering a fixed 10-record answer"
    )
    run.add(
        Result(
            f"`skyctl dns`: A for a service with {ENDPOINTS} endpoints",
            rate("ours"),
            rate("fixed"),
            "queries/s",
            "rate",
            0.7,
            samples=rounds,
            note=note,
        )
    )
    run.add(
        Result(
            "`skyctl dns`: p99 latency of the same queries",
            p99("ours"),
            p99("fixed"),
            "ms",
            "time",
            None,
            samples=count,
            note=note,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dns", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    roles = parser.add_subparsers(dest="role")
    roles.add_parser("fixed", help="(internal) the baseline server")
    hammering = roles.add_parser("hammer", help="(internal) queries for the big service")
    hammering.add_argument("port", type=int)
    hammering.add_argument("duration", type=float)
    hammering.add_argument("rate", type=float)
    loader = roles.add_parser("load", help="(internal) the load generator")
    loader.add_argument("port", type=int)
    loader.add_argument("duration", type=float)
    loader.add_argument("window", type=int)
    args = parser.parse_args(argv)
    if args.role == "fixed":
        asyncio.run(serve_fixed())
        return
    if args.role == "load":
        print(json.dumps(load(args.port, args.duration, args.window)))
        return
    if args.role == "hammer":
        print(json.dumps(hammer(args.port, args.duration, args.rate)))
        return
    run = Run(
        command=" ".join(["python -m benchmarks.dns", *(sys.argv[1:] if argv is None else argv)]),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        scale=1.0,
        machine={"cpus": os.cpu_count()},
        sizes={},
    )
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        asyncio.run(dns_scenario(server.url, run, args.seconds, args.rounds))
        asyncio.run(starvation_scenario(server.url, run, args.seconds, args.rounds))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())


if __name__ == "__main__":
    main()
