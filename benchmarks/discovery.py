"""Discovery: how fast the dead are forgotten, how fast an announce reaches a
Resolver, and what 10,000 services with 50,000 announced tasks cost; each row beside a
baseline measured in the same run.

- **Failure detection.** ``skyctl announce task ... --ttl 2s`` processes, SIGKILLed at a
  random point of their renewal cycle, timed from the kill until a Resolver following
  their service no longer lists them; p50 and p99 over ``--kills`` kills, five announcers
  at a time. The target is absolute: p99 <= TTL + 0.5 s. The baseline is the bare
  server's own figure, measured the same way in alternating rounds: plain nats-py
  processes each renewing one subject (``Nats-TTL: 2`` every TTL / 3) in a stream set up
  as the liveness stream is, SIGKILLed, timed until a nats-py consumer gets the subject's
  delete marker.
- **Announce-to-Resolver latency.** ``Announcer.announce`` of one new task at a time,
  timed from the call until a Resolver following the service lists the task, against a
  core NATS subscription on the task subjects (the heartbeat as the server routes it,
  before it is stored); the target is p99 within 5 ms of it.
- **Scale.** 10,000 services and 50,000 tasks (five per service; one label each, so one
  message per task per renewal) kept announced at TTL 15 s by one process running the
  library's ``Announcer`` (as an agent running many tasks would), over a window of
  ``--seconds``: the heartbeats/s the server stored against the rate the TTL requires,
  the tasks still live after it, and the CPU of the nats-server process and of the
  announcer (``/proc/<pid>/stat``), against a plain nats-py process renewing as many
  subjects at the same rate in a stream set up the same way (its window first; that
  stream is deleted before ours starts). Then, under that load, one-shot
  ``skyctl get endpoints NAME`` as a fresh process against the raw one-shot nats-py
  process (target <= 1.5x).

    python -m benchmarks.discovery                  # these rows alone, full size (~3 min)
    python -m benchmarks.discovery --scale 0.1      # 1,000 services and 5,000 tasks

``python -m benchmarks`` runs the same rows within the full run, sized by its ``--scale``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from benchmarks import raw
from benchmarks.commands import skyctl_command, timed
from benchmarks.report import Result, Run, median, percentile
from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.discovery.announce import RENEWALS_PER_TTL, Announcement
from registry.jetstream.server import NatsServer

__all__ = ["discovery_scenarios", "main", "scale_sizes"]

FULL_SERVICES = 10_000
TASKS_PER_SERVICE = 5
SERVICES_PER_NAMESPACE = 1_000
SCALE_TTL = 15
KILL_TTL = 2
KILLS_AT_ONCE = 5
_ACTOR = "bench@host"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def scale_sizes(scale: float) -> dict[str, int]:
    services = max(2, round(FULL_SERVICES * scale))
    return {"discovery_services": services, "discovery_tasks": services * TASKS_PER_SERVICE}


def client_env(url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    return {**base, "NATS_URL": url}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    # Fields after the command name's ")": the state is field 3, utime and stime 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.005)


async def kill_after(proc: subprocess.Popen[Any], delay: float) -> float:
    """SIGKILL ``proc`` after ``delay`` seconds; the ``perf_counter`` of the kill."""
    await asyncio.sleep(delay)
    killed = time.perf_counter()
    proc.kill()
    return killed


# Each process's standard error, kept in a file: a pipe nobody reads would stop a process
# that writes much to it.
_STDERR: dict[int, IO[str]] = {}


def _spawn(command: list[str], env: dict[str, str], stdout: int) -> subprocess.Popen[str]:
    err = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by _reap)
    proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=err, text=True)
    _STDERR[proc.pid] = err
    return proc


def _reap(procs: list[subprocess.Popen[str]]) -> str:
    """Kill whatever still runs; the standard error of them all."""
    errors = []
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        err = _STDERR.pop(proc.pid, None)
        if err is not None:
            err.seek(0)
            errors.append(err.read())
            err.close()
    return "".join(errors)


def heartbeat_bytes(task: Task, ttl: int) -> int:
    """The size of the heartbeat the announcer sends for ``task``."""
    return len(Announcement(task, ttl).data)


# -- failure detection ---------------------------------------------------------------------


async def failure_detection(url: str, run: Run, kills: int) -> None:
    env = client_env(url)
    namespace, name = "bench-fd", "fd"
    await raw.ensure_ttl_stream(url)
    markers = await raw.marker_subscription(url, raw.TTL_STREAM, "benchtask.fd.>")
    size = heartbeat_bytes(
        Task(namespace=namespace, name="fd-0-0", labels={"app": "fd"}, address="10.250.0.1"),
        KILL_TTL,
    )
    ours: list[float] = []
    base: list[float] = []
    async with (
        await Registry.connect(url, actor=_ACTOR) as registry,
        registry.resolver() as resolver,
    ):
        await registry.create(
            Service(
                namespace=namespace,
                name=name,
                selector={"app": "fd"},
                ports=(Port(port=80, target_port=8080),),
            )
        )
        listed: set[str] = set()
        gone: dict[str, float] = {}
        following = asyncio.Event()

        async def follow() -> None:
            async for endpoints in resolver.watch((namespace, name)):
                now = time.perf_counter()
                names = {a.task for a in endpoints.addresses} if endpoints else set()
                for task in listed - names:
                    gone.setdefault(task, now)
                listed.clear()
                listed.update(names)
                following.set()

        watcher = asyncio.create_task(follow())
        try:
            await asyncio.wait_for(following.wait(), 30)
            round_no = 0
            while len(ours) < kills or len(base) < kills:
                round_no += 1
                count = min(KILLS_AT_ONCE, kills - len(ours))
                if count > 0:
                    log(f"failure detection: round {round_no}, {count} skyctl announce")
                    ours += await _kill_announcers(env, namespace, round_no, count, listed, gone)
                count = min(KILLS_AT_ONCE, kills - len(base))
                if count > 0:
                    log(f"failure detection: round {round_no}, {count} nats-py heartbeaters")
                    base += await _kill_heartbeaters(env, round_no, count, size, markers)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    await markers.close()
    await raw.delete_stream(url, raw.TTL_STREAM)
    note = (
        f"{len(ours)} kills of each, {KILLS_AT_ONCE} at a time, at a random point of the "
        "renewal cycle (percentiles by nearest rank: under 100 kills, p99 is the slowest); "
        "baseline: nats-py processes renewing a subject with Nats-TTL in a stream set up "
        "as the liveness stream, SIGKILLed the same way, until a nats-py consumer gets its "
        "delete marker; target: TTL + 0.5 s"
    )
    for q, limit in ((50, None), (99, KILL_TTL + 0.5)):
        run.add(
            Result(
                f"failure detection p{q}: SIGKILLed `skyctl announce` (TTL {KILL_TTL} s) "
                "gone from a Resolver",
                percentile(ours, q),
                percentile(base, q),
                "s",
                "absolute",
                limit,
                samples=len(ours),
                note=note,
            )
        )


async def _kill_announcers(
    env: dict[str, str],
    namespace: str,
    round_no: int,
    count: int,
    listed: set[str],
    gone: dict[str, float],
) -> list[float]:
    """Seconds from each SIGKILL until the Resolver dropped the task."""
    names = [f"fd-{round_no}-{i}" for i in range(count)]
    procs = [
        _spawn(
            [
                *skyctl_command(),
                "announce",
                "task",
                task,
                "-n",
                namespace,
                "--labels",
                "app=fd",
                "--address",
                f"10.250.{round_no % 250}.{i + 1}",
                "--ttl",
                f"{KILL_TTL}s",
            ],
            env,
            subprocess.DEVNULL,
        )
        for i, task in enumerate(names)
    ]
    try:
        await until(lambda: all(n in listed for n in names), 60, "announced tasks listed")
        killed = await asyncio.gather(*(kill_after(p, random.uniform(0, KILL_TTL)) for p in procs))
        await until(lambda: all(n in gone for n in names), KILL_TTL + 10, "killed tasks gone")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; announcers said: {_reap(procs)}") from None
    _reap(procs)
    return [gone[n] - k for n, k in zip(names, killed, strict=True)]


async def _kill_heartbeaters(
    env: dict[str, str], round_no: int, count: int, size: int, markers: raw.Markers
) -> list[float]:
    """Seconds from each SIGKILL until the subject's delete marker reached a consumer."""
    prefixes = [f"benchtask.fd.r{round_no}-{i}" for i in range(count)]
    procs = [
        _spawn(
            [sys.executable, "-c", raw.HEARTBEAT_SCRIPT, prefix, "1", str(KILL_TTL), str(size)],
            env,
            subprocess.PIPE,
        )
        for prefix in prefixes
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
            if line.strip() != "ready":
                raise RuntimeError(f"a heartbeat process did not start: {line!r}")
        killed = await asyncio.gather(*(kill_after(p, random.uniform(0, KILL_TTL)) for p in procs))
        subjects = [f"{prefix}.0" for prefix in prefixes]
        await until(lambda: all(s in markers.gone for s in subjects), KILL_TTL + 10, "markers")
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}; heartbeat processes said: {_reap(procs)}") from None
    _reap(procs)
    return [markers.gone[s] - k for s, k in zip(subjects, killed, strict=True)]


# -- announce-to-Resolver latency ---------------------------------------------------------------


async def announce_latency(url: str, run: Run, count: int) -> None:
    namespace, name = "bench-lat", "lat"
    core = await raw.core_subscription(url, f"skyflow.task.{namespace}.>")
    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    async with (
        await Registry.connect(url, actor=_ACTOR) as registry,
        registry.resolver() as resolver,
    ):
        await registry.create(
            Service(
                namespace=namespace,
                name=name,
                selector={"app": "lat"},
                ports=(Port(port=80, target_port=8080),),
            )
        )
        following, finished = asyncio.Event(), asyncio.Event()

        async def follow() -> None:
            async for endpoints in resolver.watch((namespace, name)):
                now = time.perf_counter()
                for address in endpoints.addresses if endpoints else ():
                    seen.setdefault(address.task, now)
                following.set()
                if len(seen) >= count:
                    finished.set()

        watcher = asyncio.create_task(follow())
        announcer = await registry.announcer()
        announced: list[Announcement] = []
        try:
            await asyncio.wait_for(following.wait(), 30)
            for i in range(count):
                task = Task(
                    namespace=namespace,
                    name=f"t-{i}",
                    labels={"app": "lat"},
                    address=f"10.251.{i // 250}.{i % 250 + 1}",
                )
                sent[task.name] = time.perf_counter()
                announced += await announcer.announce([task], ttl=SCALE_TTL)
                await asyncio.sleep(0.005)
            await asyncio.wait_for(finished.wait(), 30)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await announcer.withdraw(announced, timeout=10)
    await core.close()
    ours = [(seen[n] - t) * 1000 for n, t in sent.items()]
    base = [
        (core.arrived[f"skyflow.task.{namespace}.{n}.app.lat"] - t) * 1000 for n, t in sent.items()
    ]
    for q in (50, 99):
        run.add(
            Result(
                f"announce-to-Resolver latency p{q}",
                percentile(ours, q),
                percentile(base, q),
                "ms",
                "delta",
                5.0 if q == 99 else None,
                samples=count,
                note="from Announcer.announce of a new task until a Resolver lists it; "
                "baseline: core NATS subscription on the same subjects",
            )
        )


# -- 10,000 services, 50,000 tasks ----------------------------------------------------------------


def scale_service(index: int) -> Service:
    return Service(
        namespace=f"disc-{index // SERVICES_PER_NAMESPACE:04d}",
        name=f"svc-{index:06d}",
        selector={"app": f"app-{index}"},
        ports=(Port(port=80, target_port=8080),),
    )


def scale_tasks(services: int) -> list[Task]:
    """Five tasks for each of the first ``services`` services, picked by its selector."""
    tasks = []
    for i in range(services):
        namespace = f"disc-{i // SERVICES_PER_NAMESPACE:04d}"
        for j in range(TASKS_PER_SERVICE):
            k = i * TASKS_PER_SERVICE + j
            tasks.append(
                Task(
                    namespace=namespace,
                    name=f"task-{i:06d}-{j}",
                    labels={"app": f"app-{i}"},
                    address=f"10.{128 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}",
                )
            )
    return tasks


async def announce_many(services: int, ttl: int) -> None:
    """The announcer process: every task of ``scale_tasks`` kept live by one Announcer.

    Prints one JSON line once all are announced, another with its counters on SIGUSR1
    and on SIGTERM, after which it withdraws them all and exits."""
    tasks = scale_tasks(services)
    async with await Registry.connect(os.environ["NATS_URL"], actor=_ACTOR) as registry:
        announcer = await registry.announcer()
        started = time.perf_counter()
        made = await announcer.announce(tasks, ttl)
        print(
            json.dumps({"announced": len(made), "seconds": time.perf_counter() - started}),
            flush=True,
        )

        def report() -> None:
            counters = {"sent": announcer.sent, "rounds": announcer.rounds}
            print(json.dumps({**counters, "failures": announcer.failures}), flush=True)

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, report)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        report()
        await announcer.withdraw(made, timeout=10)


class _Window:
    """CPU seconds of some processes and a stream's last sequence, from start to stop."""

    def __init__(self, url: str, stream: str, pids: dict[str, int]) -> None:
        self.url, self.stream, self.pids = url, stream, pids
        self.cpu: dict[str, float] = {}
        self.stored = 0
        self.seconds = 0.0

    async def measure(self, seconds: float) -> _Window:
        seq = await raw.last_sequence(self.url, self.stream)
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        self.seconds = time.perf_counter() - started
        self.cpu = {n: (cpu_seconds(p) - cpu[n]) / self.seconds for n, p in self.pids.items()}
        self.stored = await raw.last_sequence(self.url, self.stream) - seq
        return self


async def _read_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    if not line:
        raise RuntimeError(f"the announcer process ended: {_reap([proc])}")
    result: dict[str, Any] = json.loads(line)
    return result


async def scale_scenario(
    url: str,
    run: Run,
    server_pid: int,
    services: int,
    seconds: float,
    runs: int,
    ttl: int = SCALE_TTL,
) -> None:
    env = client_env(url)
    tasks = services * TASKS_PER_SERVICE
    interval = ttl / RENEWALS_PER_TTL
    seconds = max(seconds, interval)  # at least one renewal of every task
    required = tasks / interval
    log(f"discovery: creating {services:,} services")
    async with await Registry.connect(url, actor=_ACTOR) as registry:
        outcomes = await registry.create_many([scale_service(i) for i in range(services)])
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes[:3]
        size = heartbeat_bytes(scale_tasks(1)[0], ttl)

        log(f"discovery: nats-py renewing {tasks:,} subjects at TTL {ttl} s (baseline)")
        await raw.ensure_ttl_stream(url)
        heartbeats = [sys.executable, "-c", raw.HEARTBEAT_SCRIPT, "benchtask.hb"]
        baseline = _spawn([*heartbeats, str(tasks), str(ttl), str(size)], env, subprocess.PIPE)
        try:
            assert baseline.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(baseline.stdout.readline), 300)
            if line.strip() != "ready":
                raise RuntimeError(f"the heartbeat process did not start: {line!r}")
            await asyncio.sleep(interval)
            base = await _Window(
                url, raw.TTL_STREAM, {"server": server_pid, "client": baseline.pid}
            ).measure(seconds)
        finally:
            _reap([baseline])
        await raw.delete_stream(url, raw.TTL_STREAM)

        log(f"discovery: one Announcer process keeping {tasks:,} tasks live")
        command = [sys.executable, "-m", "benchmarks.discovery", "announcer"]
        announcer = _spawn([*command, str(services), str(ttl)], env, subprocess.PIPE)
        try:
            ready = await _read_line(announcer, 600)
            assert ready["announced"] == tasks, ready
            run.timings["discovery_announce_s"] = ready["seconds"]
            await asyncio.sleep(interval)  # past the first renewals, which are jittered
            announcer.send_signal(signal.SIGUSR1)
            before = await _read_line(announcer, 30)
            ours = await _Window(
                url, "SKYFLOW_TASKS", {"server": server_pid, "client": announcer.pid}
            ).measure(seconds)
            announcer.send_signal(signal.SIGUSR1)
            after = await _read_line(announcer, 30)
            live = sum(1 for t in await registry.tasks() if t.namespace.startswith("disc-"))

            log(f"discovery: one-shot get endpoints under load, {runs} rounds")
            middle = scale_service(services // 2)
            which = [middle.name, "-n", middle.namespace]
            get = [*skyctl_command(), "get", "endpoints", *which]
            get_service = [*skyctl_command(), "get", "service", *which]
            one_shot = await asyncio.to_thread(_one_shots, get, get_service, env, runs)
            announcer.send_signal(signal.SIGTERM)
            await _read_line(announcer, 30)
            await asyncio.to_thread(announcer.wait, 60)
        finally:
            _reap([announcer])

    sent = after["sent"] - before["sent"]
    run.timings.update(
        discovery_window_s=ours.seconds,
        discovery_stored=ours.stored,
        discovery_sent=sent,
        discovery_baseline_stored=base.stored,
        discovery_baseline_window_s=base.seconds,
    )
    note = (
        f"{services:,} services, {tasks:,} tasks with one label each, renewed every "
        f"{interval:g} s, a {ours.seconds:.0f} s window; the announcer sent about {sent:,} "
        f"heartbeats in it ({after['failures']} failed rounds)"
    )
    run.add(
        Result(
            f"heartbeats held: {tasks:,} tasks at TTL {ttl} s, one announcer process",
            ours.stored / ours.seconds,
            required,
            "heartbeats/s",
            "rate",
            0.95,
            note=note + "; ours: what the server stored; baseline: what the TTL requires",
        )
    )
    run.add(
        Result(
            "  tasks live after the window",
            live,
            tasks,
            "tasks",
            "rate",
            1.0,
            note="read back from the liveness stream; baseline: the tasks announced",
        )
    )
    vs = (
        f"baseline: a nats-py process renewing {tasks:,} subjects with Nats-TTL at the same "
        f"rate into a stream set up the same way ({base.stored / base.seconds:,.0f}/s stored)"
    )
    run.add(
        Result(
            f"nats-server CPU holding {tasks:,} tasks",
            ours.cpu["server"] * 100,
            base.cpu["server"] * 100,
            "% CPU",
            "time",
            None,
            note=f"% of one core over the window (/proc/<pid>/stat); {vs}",
        )
    )
    run.add(
        Result(
            f"  announcer process CPU ({tasks:,} tasks)",
            ours.cpu["client"] * 100,
            base.cpu["client"] * 100,
            "% CPU",
            "time",
            None,
            note=f"the Announcer's process; {vs}",
        )
    )
    run.add(
        Result(
            f"`skyctl get endpoints NAME` among {tasks:,} live tasks",
            median(one_shot["ours"]),
            median(one_shot["baseline"]),
            "ms",
            "time",
            1.5,
            samples=runs,
            note="a fresh process while the tasks are renewed; baseline: python, import "
            "nats, connect, one js.publish, exit",
        )
    )
    run.add(
        Result(
            "  (`skyctl get service NAME` of the same service, for scale)",
            median(one_shot["service"]),
            median(one_shot["baseline"]),
            "ms",
            "time",
            None,
            samples=runs,
            note="the same one-shot without reading the liveness stream; same baseline",
        )
    )


def _one_shots(
    get: list[str], get_service: list[str], env: dict[str, str], runs: int
) -> dict[str, list[float]]:
    """``get`` (checked once to list the service's tasks), ``get_service`` and the baseline,
    alternated."""
    shown = subprocess.run([*get, "-o", "json"], env=env, capture_output=True, text=True)
    subsets = json.loads(shown.stdout)["subsets"] if shown.returncode == 0 else []
    if sum(len(s["addresses"]) for s in subsets) != TASKS_PER_SERVICE:
        raise RuntimeError(f"{' '.join(get)} did not list the service's tasks: {shown}")
    baseline = [sys.executable, "-c", raw.ONE_SHOT_SCRIPT]
    samples: dict[str, list[float]] = {"ours": [], "service": [], "baseline": []}
    timed(baseline, env)  # warm-up: the page cache
    timed(get, env)
    for _ in range(runs):
        samples["baseline"].append(timed(baseline, env))
        samples["ours"].append(timed(get, env))
        samples["service"].append(timed(get_service, env))
    return samples


# -- all of them ---------------------------------------------------------------------------------


async def discovery_scenarios(
    url: str,
    run: Run,
    server_pid: int,
    *,
    kills: int,
    latency_events: int,
    seconds: float,
    runs: int,
    heartbeat_ttl: int = SCALE_TTL,
) -> None:
    """Every row above, in the order least disturbed by the others: the latency on a quiet
    server, the kills, then the load (its baseline's window first)."""
    log(f"discovery: announce-to-Resolver latency, {latency_events} tasks")
    await announce_latency(url, run, latency_events)
    log(f"discovery: failure detection, {kills} kills of each")
    await failure_detection(url, run, kills)
    await scale_scenario(
        url, run, server_pid, run.sizes["discovery_services"], seconds, runs, heartbeat_ttl
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.discovery", description=__doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the sizes (10,000 services, 50,000 tasks) by this",
    )
    parser.add_argument("--kills", type=int, default=30, help="announcers killed, of each kind")
    parser.add_argument(
        "--latency-events", type=int, default=300, help="tasks announced for the latency"
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="the load's window (at least TTL / 3)"
    )
    parser.add_argument(
        "--heartbeat-ttl", type=int, default=SCALE_TTL, help="the TTL of the load's tasks"
    )
    parser.add_argument("--runs", type=int, default=21, help="rounds of one-shot commands")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    roles = parser.add_subparsers(dest="role")
    announcer = roles.add_parser("announcer", help="(internal) the announcer process")
    announcer.add_argument("services", type=int)
    announcer.add_argument("ttl", type=int)
    args = parser.parse_args(argv)
    if args.role == "announcer":
        asyncio.run(announce_many(args.services, args.ttl))
        return
    run = Run.started("discovery", argv, scale_sizes(args.scale), scale=args.scale)
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        assert server.process is not None
        raw.ensure_bench_stream_sync(client_env(server.url))
        asyncio.run(
            discovery_scenarios(
                server.url,
                run,
                server.process.pid,
                kills=args.kills,
                latency_events=args.latency_events,
                seconds=args.seconds,
                runs=args.runs,
                heartbeat_ttl=args.heartbeat_ttl,
            )
        )
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    if args.json:
        run.write_json(args.json)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
