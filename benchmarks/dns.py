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

Then ``skyctl dns`` beside NSD (Debian's ``nsd``) serving the same records from a static
zone file (written from what ``skyctl dns`` answers for each of the benchmark's names),
both queried by ``dnsperf`` with ``DNSPERF_IN_FLIGHT`` queries outstanding, in
alternating rounds: queries/s at each, and the p99 latency at 8 in flight from
``dnsperf -v``'s per-query latencies (dnsperf reports only their mean and deviation; the
verbose rounds are separate, as printing each query slows dnsperf itself). The rows are
skipped, with the reason, where ``nsd`` or ``dnsperf`` is missing.

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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict, cast

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from benchmarks.report import Result, Run, median, percentile
from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.errors import AlreadyExists
from registry.jetstream.server import NatsServer

__all__ = ["dns_scenario", "main", "nsd_scenario", "starvation_scenario"]

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
DNSPERF_IN_FLIGHT = (8, 64)
P99_TARGET_MS = 2.0  # at 8 in flight
_DNSPERF_QPS = re.compile(r"Queries per second:\s+([\d.]+)")
_DNSPERF_LOST = re.compile(r"Queries lost:\s+(\d+)")
_DNSPERF_SIZE = re.compile(r"Average packet size:\s+request (\d+), response (\d+)")
_DNSPERF_LATENCY = re.compile(r"^> NOERROR \S+ A ([\d.]+)$", re.MULTILINE)


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
    env = _environment(url)
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
        ours, port = _skyctl_dns(env)
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


def _environment(url: str) -> dict[str, str]:
    """This process's environment for the processes it starts, pointed at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    env["NATS_URL"] = url
    return env


def _skyctl_dns(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """``skyctl dns`` on a free loopback port, and the port."""
    return _started([sys.executable, "-m", "cli", "dns", "--listen", "127.0.0.1:0"], env, _SERVING)


async def _announce_web(registry: Registry) -> None:
    """The service the rows ask for (made unless a row before made it) and its
    ``ENDPOINTS`` tasks, announced with a TTL longer than a run: what is measured is
    answering, not renewals."""
    with contextlib.suppress(AlreadyExists):
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
    await (await registry.announcer()).announce(tasks, ttl=600)


async def dns_scenario(url: str, run: Run, seconds: float, rounds: int = 3) -> None:
    """The two rows: queries/s (target >= 0.7x the fixed server's) and p99 latency."""
    env = _environment(url)
    async with await Registry.connect(url, actor="bench@host") as registry:
        await _announce_web(registry)
        ours, ours_port = _skyctl_dns(env)
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


# -- beside NSD, measured by dnsperf --------------------------------------------------------


def _missing_tools() -> str | None:
    """Why the NSD rows cannot run here, or None."""
    missing = [tool for tool in ("nsd", "dnsperf") if shutil.which(tool) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (Debian: apt-get install nsd dnsperf)"


def _zone_file(port: int) -> str:
    """The benchmark's names as ``skyctl dns`` on ``port`` answers them (over TCP, so
    whole), as a zone file: the same records for NSD to serve."""
    names = [(QNAME, "A"), (QNAME, "SRV"), (f"_80._tcp.{QNAME}", "SRV")]
    names += [(f"web-{i}.{NAMESPACE}.task.skyflow.", "A") for i in range(ENDPOINTS)]
    lines = ["$ORIGIN skyflow."]
    apex = dns.query.tcp(dns.message.make_query("skyflow.", "SOA"), "127.0.0.1", port=port)
    for name, rdtype in [("skyflow.", "SOA"), *names]:
        query = dns.message.make_query(name, rdtype)
        response = apex if rdtype == "SOA" else dns.query.tcp(query, "127.0.0.1", port=port)
        found = [r for r in response.answer if r.rdtype == dns.rdatatype.from_text(rdtype)]
        if not found:
            raise RuntimeError(f"skyctl dns answered {name} {rdtype} with nothing: {response}")
        lines += [rrset.to_text() for rrset in found]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    """A loopback port free for both UDP and TCP (for NSD, which is told one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def _start_nsd(folder: Path, zone: str) -> tuple[subprocess.Popen[bytes], int]:
    """NSD in the foreground serving ``zone`` on a free loopback port, with its own
    configuration and files in ``folder``; response rate limiting off (it would cap a
    benchmark at a few hundred queries/s from one address). One server process, as
    ``skyctl dns`` is one."""
    (folder / "skyflow.zone").write_text(zone)
    port = _free_port()
    config = folder / "nsd.conf"
    config.write_text(
        "server:\n"
        f'  ip-address: 127.0.0.1@{port}\n  server-count: 1\n  username: ""\n  chroot: ""\n'
        f'  zonesdir: "{folder}"\n  database: ""\n  pidfile: "{folder}/nsd.pid"\n'
        f'  logfile: "{folder}/nsd.log"\n  xfrdfile: "{folder}/xfrd.state"\n'
        f'  zonelistfile: "{folder}/zone.list"\n  hide-version: yes\n'
        "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
        "remote-control:\n  control-enable: no\n"
        f'zone:\n  name: skyflow.\n  zonefile: "{folder}/skyflow.zone"\n'
    )
    proc = subprocess.Popen(
        ["nsd", "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 15
    query = dns.message.make_query(QNAME, "A")
    while True:
        try:
            response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                log_text = (folder / "nsd.log").read_text() if (folder / "nsd.log").exists() else ""
                raise RuntimeError(f"nsd did not start: {err!r} {log_text}") from None
            continue
        if response.answer:
            return proc, port


class Dnsperf(TypedDict):
    """One dnsperf round."""

    qps: float
    lost: int
    response_bytes: int
    latencies: list[float]  # seconds, only from verbose rounds


def dnsperf(port: int, folder: Path, seconds: float, in_flight: int, verbose: bool) -> Dnsperf:
    """``dnsperf`` asking A for the benchmark's service with ``in_flight`` queries
    outstanding for ``seconds``; verbose: each query's latency too."""
    data = folder / "queries.txt"
    data.write_text(f"{QNAME} A\n")
    command = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data)]
    command += ["-l", f"{seconds:g}", "-q", str(in_flight), "-c", "1", "-t", "2"]
    proc = subprocess.run(
        [*command, *(["-v"] if verbose else [])],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    qps, lost = _DNSPERF_QPS.search(proc.stdout), _DNSPERF_LOST.search(proc.stdout)
    size = _DNSPERF_SIZE.search(proc.stdout)
    if proc.returncode != 0 or qps is None or lost is None or size is None:
        raise RuntimeError(f"dnsperf failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    latencies = [float(found) for found in _DNSPERF_LATENCY.findall(proc.stdout)]
    return Dnsperf(
        qps=float(qps.group(1)),
        lost=int(lost.group(1)),
        response_bytes=int(size.group(2)),
        latencies=latencies,
    )


async def nsd_scenario(url: str, run: Run, seconds: float, rounds: int = 3) -> str | None:
    """``skyctl dns`` beside NSD serving the same records, by dnsperf: queries/s at each
    of ``DNSPERF_IN_FLIGHT`` (target >= 0.25x NSD's), and p99 at 8 in flight (target
    <= ``P99_TARGET_MS``). The service and its tasks are those of ``dns_scenario``, made
    if missing. Returns why the rows were skipped, or None."""
    missing = _missing_tools()
    if missing is not None:
        return missing
    env = _environment(url)
    async with await Registry.connect(url, actor="bench@host") as registry:
        await _announce_web(registry)
        ours, ours_port = _skyctl_dns(env)
        try:
            with tempfile.TemporaryDirectory(prefix="skyflow-nsd-") as name:
                folder = Path(name)
                zone = await asyncio.to_thread(_zone_file, ours_port)
                nsd, nsd_port = await asyncio.to_thread(_start_nsd, folder, zone)
                try:
                    samples = await asyncio.to_thread(
                        _nsd_rounds, {"ours": ours_port, "nsd": nsd_port}, folder, seconds, rounds
                    )
                finally:
                    nsd.terminate()
                    nsd.communicate(timeout=10)
        finally:
            ours.terminate()
            ours.communicate(timeout=10)
    _nsd_rows(run, samples, seconds, rounds)
    return None


Samples = dict[tuple[str, int, bool], list[Dnsperf]]


def _nsd_rounds(ports: dict[str, int], folder: Path, seconds: float, rounds: int) -> Samples:
    """dnsperf rounds alternating between the servers: each in-flight count, then a
    verbose round at 8 for latencies."""
    samples: Samples = {}
    kinds = [(n, False) for n in DNSPERF_IN_FLIGHT] + [(DNSPERF_IN_FLIGHT[0], True)]
    for i in range(rounds):
        order = list(ports.items()) if i % 2 == 0 else list(reversed(ports.items()))
        for in_flight, verbose in kinds:
            for name, port in order:
                shown = f"{in_flight} in flight{', verbose' if verbose else ''}"
                log(f"dns: dnsperf round {i + 1}/{rounds}, {name}, {shown}, {seconds:g} s")
                found = dnsperf(port, folder, seconds, in_flight, verbose)
                samples.setdefault((name, in_flight, verbose), []).append(found)
    return samples


def _nsd_rows(run: Run, samples: Samples, seconds: float, rounds: int) -> None:
    sizes = {
        name: samples[(name, DNSPERF_IN_FLIGHT[0], False)][0]["response_bytes"]
        for name in ("ours", "nsd")
    }
    note = (
        f"dnsperf over UDP, {rounds} alternating rounds of {seconds:g} s; NSD "
        f"(one server process) serving the same records from a zone file; response "
        f"{sizes['ours']} bytes (skyctl dns) and {sizes['nsd']} (NSD)"
    )
    for in_flight in DNSPERF_IN_FLIGHT:

        def rate(name: str, in_flight: int = in_flight) -> float:
            return median([s["qps"] for s in samples[(name, in_flight, False)]])

        lost = sum(s["lost"] for s in samples[("ours", in_flight, False)])
        run.add(
            Result(
                f"`skyctl dns` beside NSD: A for a service with {ENDPOINTS} endpoints, "
                f"{in_flight} in flight",
                rate("ours"),
                rate("nsd"),
                "queries/s",
                "rate",
                0.25,
                samples=rounds,
                note=f"{note}; {lost} of ours lost",
            )
        )

    def p99(name: str) -> tuple[float, int]:
        pooled = [
            t * 1000 for s in samples[(name, DNSPERF_IN_FLIGHT[0], True)] for t in s["latencies"]
        ]
        return percentile(pooled, 99), len(pooled)

    (ours, count), (nsd, _) = p99("ours"), p99("nsd")
    run.add(
        Result(
            f"`skyctl dns` p99 latency at {DNSPERF_IN_FLIGHT[0]} in flight (NSD beside it)",
            ours,
            nsd,
            "ms",
            "absolute",
            P99_TARGET_MS,
            samples=count,
            note=f"{note}; latencies from dnsperf -v, in rounds of their own",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dns", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    parser.add_argument(
        "--only",
        choices=["library", "nsd", "starvation"],
        help="one group of rows: beside the dnspython server, beside NSD, or the victim's p99",
    )
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
    run = Run.started("dns", argv, {})
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        skipped = None
        if args.only in (None, "library"):
            asyncio.run(dns_scenario(server.url, run, args.seconds, args.rounds))
        if args.only in (None, "nsd"):
            skipped = asyncio.run(nsd_scenario(server.url, run, args.seconds, args.rounds))
        if args.only in (None, "starvation"):
            asyncio.run(starvation_scenario(server.url, run, args.seconds, args.rounds))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    if skipped is not None:
        print(f"\n`skyctl dns` beside NSD (queries/s, p99): skipped: {skipped}")


if __name__ == "__main__":
    main()
