"""Tenants: what a namespace's intake stream costs, and whether a hostile tenant at its
bound slows discovery for another namespace.

- **Intake cost.** ``TASKS`` heartbeats (one label each, 200-byte bodies) pipelined from
  one nats-py client into a namespace's intake, which ``SKYFLOW_TASKS`` sources, beside the
  same heartbeats written straight into one stream configured as ``SKYFLOW_TASKS`` (the
  layout before intakes): the first round, a round of renewals, and how long after the
  last acknowledgement the last copy is in ``SKYFLOW_TASKS``.
- **A victim beside a hostile tenant.** A Resolver follows a service in namespace
  ``bench-victim``; tasks join it one at a time and each is timed from the announce call
  to the Resolver seeing it (p99). Then the same with a second process as the hostile
  tenant: it fills its own intake to its bound with ``Nats-TTL: never`` heartbeats, then
  every second renews all of them (the pace of a 3 s TTL), sends 20 roll-ups (refused) and
  100 new subjects past the bound (refused). A tenant that floods the server as fast as
  it can is a different attack: NATS has no per-user rate limit, and on two cores such a
  flood slows every client of the server, this registry's or not.
- **Reads in a user's own consumer names.** On a server with ``nats-server-auth.conf``, a
  read (one service's history: one ordered consumer, made and deleted) as a viewer, who
  must pick a free one of its 16 consumer names, beside the same read as admin, whose
  consumers the server names; then the viewer's read with 15 of its names held.

    python -m benchmarks.tenants                    # 50,000 heartbeats, 200 joins
    python -m benchmarks.tenants --tasks 5000 --joins 50

``python -m benchmarks`` runs the same rows within the full run (scaled).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from benchmarks.report import Result, Run, percentile
from events import Port, Service
from events.liveness import IntakeSpec, TasksSpec
from events.task import Task
from registry.client import Registry
from registry.jetstream.credentials import Credentials
from registry.jetstream.liveness import JetStreamLiveness
from registry.jetstream.server import NatsServer

__all__ = ["main", "tenant_scenarios"]

VICTIM, HOSTILE = "bench-victim", "bench-hostile"
_AUTH_ENV = {  # nats-server-auth.conf's users, and the variables that give their passwords
    "admin": "SKYFLOW_ADMIN_PASSWORD",
    "shop-writer": "SKYFLOW_SHOP_PASSWORD",
    "viewer": "SKYFLOW_VIEWER_PASSWORD",
    "shop-agent": "SKYFLOW_AGENT_PASSWORD",
    "controller": "SKYFLOW_CONTROLLER_PASSWORD",
}
_BODY = b"x" * 200


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _api(nc: NatsClient, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(subject, json.dumps(body).encode(), timeout=30)
    answer = json.loads(reply.data)
    if "error" in answer:
        raise RuntimeError(f"{subject}: {answer['error']}")
    return dict(answer)


async def _pump(nc: NatsClient, prefix: str, count: int) -> float:
    """Seconds to store ``count`` heartbeats, pipelined, a request every 2,000."""
    started = time.perf_counter()
    for i in range(count):
        subject = f"{prefix}.t{i}.app.web"
        if i % 2000 == 1999 or i == count - 1:
            await nc.request(subject, _BODY, headers={"Nats-TTL": "120"}, timeout=30)
        else:
            await nc.publish(subject, _BODY, headers={"Nats-TTL": "120"})
    return time.perf_counter() - started


async def intake_cost(url: str, run: Run, tasks: int) -> None:
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    try:
        direct = {**TasksSpec(name="BENCH_DIRECT").config(), "subjects": ["tenantbench.direct.>"]}
        await _api(nc, "$JS.API.STREAM.CREATE.BENCH_DIRECT", direct)
        intake = IntakeSpec("bench-cost", max_subjects=max(tasks, 1000))
        await _api(nc, f"$JS.API.STREAM.CREATE.{intake.name}", intake.config())
        sink = {**TasksSpec(name="BENCH_SOURCED").config((intake.name,))}
        await _api(nc, "$JS.API.STREAM.CREATE.BENCH_SOURCED", sink)
        first_direct = await _pump(nc, "tenantbench.direct.ns", tasks)
        first_intake = await _pump(nc, "skyflow.task.bench-cost", tasks)
        acked = time.perf_counter()
        while True:
            info = await _api(nc, "$JS.API.STREAM.INFO.BENCH_SOURCED", {})
            if info["state"]["messages"] >= tasks:
                break
            await asyncio.sleep(0.005)
        lag = time.perf_counter() - acked
        renew_intake = await _pump(nc, "skyflow.task.bench-cost", tasks)
        renew_direct = await _pump(nc, "tenantbench.direct.ns", tasks)
        for stream in ("BENCH_DIRECT", "BENCH_SOURCED", intake.name):
            await _api(nc, f"$JS.API.STREAM.DELETE.{stream}", {})
    finally:
        await nc.close()
    note = f"{tasks:,} heartbeats, one nats-py client; baseline: straight into one stream"
    for scenario, ours, base in (
        ("heartbeats through an intake, first round", first_intake, first_direct),
        ("heartbeats through an intake, renewals", renew_intake, renew_direct),
    ):
        run.add(Result(scenario, tasks / ours, tasks / base, "msg/s", "rate", None, 1, note))
    run.add(
        Result(
            "last heartbeat in SKYFLOW_TASKS after its ack",
            lag * 1000,
            None,
            "ms",
            "absolute",
            None,
            1,
            f"{tasks:,} heartbeats through an intake",
        )
    )


async def _joins(url: str, count: int, tag: str) -> list[float]:
    """Milliseconds from each announce call to the Resolver seeing that task."""
    service = f"{VICTIM}/api"
    latencies: list[float] = []
    async with await Registry.connect(url) as registry, registry.resolver() as resolver:
        await resolver.endpoints(service)
        announcer = await registry.announcer()
        made = []
        for i in range(count):
            task = Task(
                namespace=VICTIM,
                name=f"{tag}-{i}",
                labels={"app": "api"},
                address=f"10.252.{i // 250}.{i % 250 + 1}",
            )
            started = time.perf_counter()
            made += await announcer.announce([task], ttl=60)
            while True:
                known = resolver.known(service)
                if known is not None and any(a.task == task.name for a in known.addresses):
                    break
                await asyncio.sleep(0.0005)
            latencies.append((time.perf_counter() - started) * 1000)
        await announcer.withdraw(made, timeout=10)
    return latencies


def _victim_service() -> Service:
    return Service(
        namespace=VICTIM,
        name="api",
        selector={"app": "api"},
        ports=(Port(port=80, target_port=8080),),
    )


async def victim_latency(url: str, run: Run, joins: int, bound: int) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(_victim_service())
        liveness = await registry.log.liveness()
        assert isinstance(liveness, JetStreamLiveness)
        await liveness.ensure_intake(VICTIM)
        await liveness.ensure_intake(HOSTILE, max_subjects=bound)
    await _joins(url, min(joins, 20), "warm")
    idle = await _joins(url, joins, "idle")
    hostile = subprocess.Popen(  # noqa: ASYNC220 (started once; read in a thread)
        [sys.executable, "-m", "benchmarks.tenants", "hostile", url, str(bound)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hostile.stdout is not None
        ready = await asyncio.to_thread(hostile.stdout.readline)
        if not ready.startswith("full"):
            raise RuntimeError(f"the hostile tenant did not start: {ready!r}")
        attacked = await _joins(url, joins, "attacked")
    finally:
        hostile.terminate()
        hostile.wait(10)
    run.add(
        Result(
            "victim join -> Resolver, hostile tenant at its bound (p50)",
            percentile(attacked, 50),
            percentile(idle, 50),
            "ms",
            "time",
            None,
            joins,
            "as below",
        )
    )
    run.add(
        Result(
            "victim join -> Resolver, hostile tenant at its bound (p99)",
            percentile(attacked, 99),
            percentile(idle, 99),
            "ms",
            "time",
            2.0,
            joins,
            f"baseline: the same joins with no other tenant; the hostile one holds {bound:,} "
            "never-expiring subjects, renews them all each second, and sends roll-ups and "
            "subjects past its bound (refused)",
        )
    )


async def _hostile(url: str, bound: int) -> None:
    """Fill the hostile namespace's intake, say so, then keep at it until killed."""
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    prefix = f"skyflow.task.{HOSTILE}"
    never = {"Nats-TTL": "never"}
    for i in range(bound):
        await nc.publish(f"{prefix}.n{i}.app.api", _BODY, headers=never)
    await nc.flush()
    print("full", flush=True)
    round_ = 0
    while True:  # each second: every subject renewed (TTL-3-s pace), roll-ups, refusals
        round_ += 1
        started = time.perf_counter()
        for i in range(bound):
            await nc.publish(f"{prefix}.n{i}.app.api", _BODY, headers=never)
        for i in range(100):
            await nc.publish(f"{prefix}.over{round_}-{i}.app.api", _BODY, headers=never)
        for _ in range(10):
            for rollup in ("all", "sub"):
                await nc.publish(f"{prefix}.r.app.api", b"", headers={"Nats-Rollup": rollup})
        await nc.flush()
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))


async def _reads_ms(url: str, user: str, password: str, reads: int) -> float:
    """Median ms of ``reads`` histories of one service, each its own consumer."""
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    credentials = Credentials(user=user, password=password, inbox_prefix=inbox)
    async with await Registry.connect(url, credentials=credentials) as registry:
        await registry.history(VICTIM, "api")  # warm
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            await registry.history(VICTIM, "api")
            times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


async def read_slots_cost(run: Run, reads: int) -> None:
    passwords = {role: secrets.token_hex(8) for role in _AUTH_ENV}
    env = {variable: passwords[role] for role, variable in _AUTH_ENV.items()}
    config = Path(__file__).parent.parent / "nats-server-auth.conf"
    admin, viewer = passwords["admin"], passwords["viewer"]
    with (
        tempfile.TemporaryDirectory() as folder,
        NatsServer(Path(folder) / "store", config=config, env=env) as server,
    ):
        credentials = Credentials(user="admin", password=admin)
        async with await Registry.connect(server.url, credentials=credentials) as registry:
            await registry.create(_victim_service())
        named = await _reads_ms(server.url, "admin", admin, reads)
        free = await _reads_ms(server.url, "viewer", viewer, reads)
        nc = await nats.connect(
            server.url, user="viewer", password=viewer, inbox_prefix="_INBOX_viewer"
        )
        try:
            await nc.subscribe("_INBOX_viewer.held.>", cb=_ignore)
            for k in range(15):  # held by the viewer's other reads
                config_ = {
                    "name": f"viewer-{k}",
                    "deliver_subject": f"_INBOX_viewer.held.{k}",
                    "ack_policy": "none",
                }
                await _api(
                    nc,
                    f"$JS.API.CONSUMER.CREATE.SKYFLOW_SERVICES.viewer-{k}",
                    {"stream_name": "SKYFLOW_SERVICES", "config": config_},
                )
            held = await _reads_ms(server.url, "viewer", viewer, reads)
        finally:
            await nc.close()
    note = "baseline: the same read as admin (consumer named by the server); medians"
    run.add(
        Result(
            "a read in the viewer's own consumer names", free, named, "ms", "time", 1.5, reads, note
        )
    )
    run.add(
        Result("the same, 15 of its 16 names held", held, named, "ms", "time", None, reads, note)
    )


async def _ignore(msg: Any) -> None:
    pass


async def tenant_scenarios(url: str, run: Run, *, tasks: int, joins: int, bound: int) -> None:
    log(f"tenants: {tasks:,} heartbeats through an intake and straight in")
    await intake_cost(url, run, tasks)
    log(f"tenants: {joins} victim joins, idle and beside a tenant at its bound ({bound:,})")
    await victim_latency(url, run, joins, bound)
    log(f"tenants: {joins} reads in a user's own consumer names, on a server with users")
    await read_slots_cost(run, joins)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tenants", description=__doc__)
    parser.add_argument("--tasks", type=int, default=50_000, help="heartbeats per round")
    parser.add_argument("--joins", type=int, default=200, help="victim tasks timed per case")
    parser.add_argument("--bound", type=int, default=20_000, help="the hostile intake's bound")
    roles = parser.add_subparsers(dest="role")
    hostile = roles.add_parser("hostile", help="(internal) the hostile tenant")
    hostile.add_argument("url")
    hostile.add_argument("bound", type=int)
    args = parser.parse_args(argv)
    if args.role == "hostile":
        asyncio.run(_hostile(args.url, args.bound))
        return
    run = Run.started(
        "tenants", argv, {"tasks": args.tasks, "joins": args.joins, "bound": args.bound}
    )
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        asyncio.run(
            tenant_scenarios(server.url, run, tasks=args.tasks, joins=args.joins, bound=args.bound)
        )
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())


if __name__ == "__main__":
    main()
