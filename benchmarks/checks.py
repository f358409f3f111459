"""Health checks: what an announcer pays, in CPU, to check its tasks, beside the same loop
written in raw Python in the same run.

One announcer process keeps ``--tasks`` tasks announced through ``Registry.announce``,
each with ``check=parse_check("http://127.0.0.1:PORT/healthz/<i>", interval=5 s)``, as an
agent running many tasks would; its CPU (``time.process_time()``: user + system, every
thread) is taken over a window of ``--seconds`` once all are announced, and divided by
the checks it ran in that window. Three processes, one after the other, each measured
apart, all against the same local HTTP servers (a process of their own, ``--servers``
asyncio servers answering ``200`` to each path):

- **ours**: the announcer with checks (probes through h11, thresholds, readiness, plus the
  heartbeats every task needs: TTL ``--ttl``, renewed at a third of it);
- **ours, unchecked**: the same announcer and tasks without checks, so the checks' own
  share is the difference (the heartbeats cost the same in both);
- **baseline**: raw asyncio, for each target every 5 s: open a connection, send a GET,
  read the status line, close, within a 2 s timeout; nothing else.

Rounds alternate the three (``--rounds``) and the table shows medians, so machine load
falls on each alike.

    python -m benchmarks.checks                       # 1,000 tasks, 30 s windows (~2.5 min)
    python -m benchmarks.checks --tasks 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import Result, Run, median

__all__ = ["main"]

INTERVAL = 5.0  # seconds between a task's checks (--interval)
TIMEOUT = 2.0
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def target(ports: list[int], i: int) -> tuple[int, str]:
    """Task ``i``'s health endpoint: a port of the HTTP servers, and its own path."""
    return ports[i % len(ports)], f"/healthz/{i}"


# -- the HTTP servers (a process of their own) ----------------------------------------------


async def _serve(count: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_OK)
            await writer.drain()
        writer.close()

    servers = [
        await asyncio.start_server(answer, "127.0.0.1", 0, backlog=1024) for _ in range(count)
    ]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.Event().wait()


# -- the measured processes -----------------------------------------------------------------


def _report(cpu: float, checks: int, window: float, **extra: Any) -> None:
    print(json.dumps({"cpu": cpu, "checks": checks, "window": window, **extra}), flush=True)


async def _announcer(
    url: str,
    ports: list[int],
    tasks: int,
    seconds: float,
    interval: float,
    ttl: int,
    checked: bool,
) -> None:
    from events.task import Task
    from registry.client import Registry
    from registry.discovery.checks import parse_check
    from registry.discovery.keeper import TaskKeeper

    async with await Registry.connect(url) as registry, contextlib.AsyncExitStack() as stack:
        keepers: list[TaskKeeper] = []
        started = time.perf_counter()
        for i in range(tasks):
            port, path = target(ports, i)
            task = Task(
                namespace="bench-checks",
                name=f"t-{i}",
                labels={"app": "checked"},
                address=f"10.253.{i // 250}.{i % 250 + 1}",
            )
            check = None
            if checked:
                check = parse_check(
                    f"http://127.0.0.1:{port}{path}", interval=interval, timeout=TIMEOUT
                )
            keepers.append(
                await stack.enter_async_context(registry.announce(task, ttl=ttl, check=check))
            )
        setup = time.perf_counter() - started
        not_ready = sum(not k.task.ready for k in keepers)
        await asyncio.sleep(interval)  # settled: every check loop running
        checks_before = sum(k.checks for k in keepers)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu_before
        window = time.perf_counter() - wall_before
        checks = sum(k.checks for k in keepers) - checks_before
        failing = sum(not k.task.ready for k in keepers)
        _report(cpu, checks, window, setup=setup, not_ready_at_start=not_ready, not_ready=failing)


async def _raw(ports: list[int], tasks: int, seconds: float, interval: float) -> None:
    counted = [0, 0]  # checks, failures

    async def check(port: int, path: str) -> bool:
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    writer.write(f"{head}Connection: close\r\n\r\n".encode())
                    await writer.drain()
                    status = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
        except (OSError, TimeoutError):
            return False
        parts = status.split(b" ", 2)
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400

    async def every_interval(i: int) -> None:
        port, path = target(ports, i)
        loop = asyncio.get_running_loop()
        due = loop.time() + interval * i / tasks  # spread over the interval
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            passed = await check(port, path)
            counted[0] += 1
            counted[1] += not passed
            due = max(due + interval, loop.time())

    loops = [asyncio.create_task(every_interval(i)) for i in range(tasks)]
    await asyncio.sleep(interval)
    checks_before, failed_before = counted
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu_before
    window = time.perf_counter() - wall_before
    checks, failed = counted[0] - checks_before, counted[1] - failed_before
    for job in loops:
        job.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    _report(cpu, checks, window, failed=failed)


# -- the run ------------------------------------------------------------------------------


def _child(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.checks", *args],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )


def _measure(args: list[str], timeout: float) -> dict[str, Any]:
    """Run one measured process to its end; the figures it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    proc = _child(*args, env=env)
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {proc.returncode}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def _per_check_us(figures: dict[str, Any]) -> float:
    return float(figures["cpu"]) / max(int(figures["checks"]), 1) * 1e6


def measure(
    url: str,
    run: Run,
    *,
    tasks: int,
    seconds: float,
    interval: float = INTERVAL,
    servers: int,
    ttl: int,
    rounds: int,
) -> None:
    server = _child("serve", str(servers))
    try:
        assert server.stdout is not None
        ports = server.stdout.readline().split()
        if not ports:
            raise RuntimeError("the HTTP servers did not start")
        common = [",".join(ports), str(tasks), str(seconds), str(interval)]
        limit = seconds + interval + tasks * 0.2 + 120  # setup included, generously
        rows: dict[str, list[dict[str, Any]]] = {"ours": [], "unchecked": [], "raw": []}
        for round_ in range(1, rounds + 1):
            log(f"checks: round {round_}/{rounds}: raw asyncio loop, {tasks:,} targets")
            rows["raw"].append(_measure(["raw", *common], limit))
            log(f"checks: round {round_}/{rounds}: announcer, {tasks:,} tasks without checks")
            rows["unchecked"].append(_measure(["announcer", url, *common, str(ttl), "no"], limit))
            log(f"checks: round {round_}/{rounds}: announcer, {tasks:,} tasks checked")
            rows["ours"].append(_measure(["announcer", url, *common, str(ttl), "yes"], limit))
    finally:
        server.kill()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    for kind, figures in rows.items():
        for f in figures:
            log(f"checks: {kind}: {json.dumps(f)}")
    ours = median([_per_check_us(f) for f in rows["ours"]])
    raw = median([_per_check_us(f) for f in rows["raw"]])
    share = median(
        [
            (float(o["cpu"]) - float(u["cpu"]) * float(o["window"]) / float(u["window"]))
            / max(int(o["checks"]), 1)
            * 1e6
            for o, u in zip(rows["ours"], rows["unchecked"], strict=True)
        ]
    )
    checks = median([float(f["checks"]) for f in rows["ours"]])
    raw_checks = median([float(f["checks"]) for f in rows["raw"]])
    expected = tasks * seconds / interval
    if min(checks, raw_checks) < 0.9 * expected:
        ran = f"{checks:,.0f} and {raw_checks:,.0f} of {expected:,.0f}"
        log(f"checks: fewer checks ran than were due ({ran})")
    failing = max(int(f["not_ready"]) for f in rows["ours"]) + max(
        int(f["failed"]) for f in rows["raw"]
    )
    note = (
        f"{tasks:,} local HTTP tasks checked every {interval:g} s, {seconds:g} s windows, "
        f"median of {rounds}; {checks:,.0f} checks by ours, {raw_checks:,.0f} by the baseline "
        f"per window; {failing} failing"
    )
    run.add(
        Result(
            f"CPU per HTTP check, announcer with {tasks:,} checked tasks (all its CPU)",
            ours,
            raw,
            "us",
            "time",
            None,
            rounds,
            note + "; baseline: the raw asyncio loop",
        )
    )
    run.add(
        Result(
            "  the checks' share (less the same announcer without checks)",
            share,
            raw,
            "us",
            "time",
            None,
            rounds,
            "the unchecked announcer's CPU, scaled to the same window, subtracted",
        )
    )
    per_core = [float(f["cpu"]) / float(f["window"]) * 100 for f in rows["ours"]]
    raw_core = [float(f["cpu"]) / float(f["window"]) * 100 for f in rows["raw"]]
    unchecked_core = [float(f["cpu"]) / float(f["window"]) * 100 for f in rows["unchecked"]]
    run.add(
        Result(
            f"announcer CPU, {tasks:,} checked tasks (% of one core)",
            median(per_core),
            median(raw_core),
            "% CPU",
            "time",
            None,
            rounds,
            "baseline: the raw loop's process",
        )
    )
    run.add(
        Result(
            f"  (the same announcer, {tasks:,} tasks unchecked, for scale)",
            median(unchecked_core),
            None,
            "% CPU",
            "absolute",
            None,
            rounds,
            f"heartbeats only (TTL {ttl} s)",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checks", description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000, help="checked tasks")
    parser.add_argument("--seconds", type=float, default=30.0, help="each measured window")
    parser.add_argument(
        "--interval", type=float, default=INTERVAL, help="seconds between a task's checks"
    )
    parser.add_argument("--servers", type=int, default=4, help="HTTP servers (ports)")
    parser.add_argument("--ttl", type=int, default=15, help="the tasks' TTL (seconds)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the three processes")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    roles = parser.add_subparsers(dest="role")
    serve = roles.add_parser("serve", help="(internal) the HTTP servers")
    serve.add_argument("count", type=int)
    raw = roles.add_parser("raw", help="(internal) the baseline loop")
    announcer = roles.add_parser("announcer", help="(internal) the measured announcer")
    announcer.add_argument("url")
    for role in (raw, announcer):
        role.add_argument("ports")
        role.add_argument("tasks", type=int)
        role.add_argument("seconds", type=float)
        role.add_argument("interval", type=float)
    announcer.add_argument("ttl", type=int)
    announcer.add_argument("checked", choices=["yes", "no"])
    args = parser.parse_args(argv)
    if args.role == "serve":
        asyncio.run(_serve(args.count))
        return
    if args.role in ("raw", "announcer"):
        ports = [int(p) for p in args.ports.split(",")]
        if args.role == "raw":
            asyncio.run(_raw(ports, args.tasks, args.seconds, args.interval))
        else:
            asyncio.run(
                _announcer(
                    args.url,
                    ports,
                    args.tasks,
                    args.seconds,
                    args.interval,
                    args.ttl,
                    args.checked == "yes",
                )
            )
        return
    run = Run.started(
        "checks", argv, {"tasks": args.tasks, "seconds": int(args.seconds), "rounds": args.rounds}
    )
    from registry.jetstream.server import NatsServer

    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        measure(
            server.url,
            run,
            tasks=args.tasks,
            seconds=args.seconds,
            interval=args.interval,
            servers=args.servers,
            ttl=args.ttl,
            rounds=args.rounds,
        )
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    if args.json is not None:
        run.write_json(args.json)


if __name__ == "__main__":
    main()
