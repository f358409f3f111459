"""Sites: how fresh the hub's view of a site is, and how long a cut hides the site from it.

A hub and a site (``east``) on real nats-servers, the site's leaf link through the
tests' cuttable TCP forwarder (``tests/sitesetup.py``), a recorder (``skyctl record``)
at the site in a process of its own, as ``docs/sites.md`` sets one up.

- **Freshness, link up.** A task announced at the site, timed from the site's
  acknowledgement of its heartbeat to the hub's Resolver (``registry.resolver(sites=True)``,
  what ``skyctl dns --sites`` and ``skyctl proxy --sites`` answer from: the service has no
  task at the hub, so it resolves to the site's) answering with it, and to the hub's
  one-shot reading path showing it among the service's endpoints at the site:
  ``Registry.served_at(..., site="east")``, the library call behind ``skyctl get
  endpoints NAME --site east`` at the hub, read in a loop. The
  baseline, in the same samples: a raw nats-py ordered consumer of the hub's sourced copy
  of the site's membership history, timed to the arrival of the same task's join (what
  any reader at the hub must wait for; the rest is the reading path). For scale, the
  arrival at the hub of the task's heartbeat in the sourced copy of the site's live tasks
  (no recorder in between).
- **From heal to the hub being current**, for cuts of 4, 16 and 40 s, each on a hub and
  site of its own, the three cut at the same moment, ``--rounds`` times. During each cut a
  task is born and dies at the site and a service is created at the hub. Timed from the
  heal: the hub reaching the site's JetStream API across the link again (the baseline:
  the link itself is back), the hub calling the site live (``get sites``), the hub's copy
  of the site's history holding everything the site recorded (the cut's join and leave
  included), and the site's mirror holding the hub's log.

- **With ``--watch ROUNDS``, ``skyctl site watch`` alone**: 40 s cuts on six set-ups at
  once, three of them with ``skyctl site watch`` at the hub (which re-asserts the hub's
  views of a site it reaches but has not heard past its lease), the other three without.
  A source whose set-up request went out during the cut otherwise waits for that
  request's 30 s timeout (nats-server's ``srcConsumerWaitTime``); a re-added source is
  set up at once, from the last sequence the view holds.
- **The hub's one-shot read of a site** with ``--transitions`` kept in its history
  (``Registry.site_tasks``) beside reading the whole copy as of a moment.

    python -m benchmarks.sites                # 50 freshness samples, 3 rounds of cuts
    python -m benchmarks.sites --rounds 1 --samples 20
    python -m benchmarks.sites --watch 2      # skyctl site watch's rows alone (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from benchmarks.commands import skyctl_command
from benchmarks.report import Result, Run, median, percentile
from events.membership import (
    MEMBERSHIP_STREAM,
    MembershipEvent,
    TaskJoined,
    TaskReadinessChanged,
    encode_membership,
)
from events.task import Task
from registry.client import Registry
from registry.services.when import AtTime
from registry.sites.links import read_sites, session
from tests.sitesetup import Running, hub_and_sites

__all__ = ["main"]

NS = "bench-sites"
LEASE = "2s"
CUTS = (4.0, 16.0, 40.0)
DEADLINE_S = 120.0  # for anything after a heal


def log(message: str) -> None:
    print(f"[sites] {message}", file=sys.stderr, flush=True)


def skyctl(*args: str, url: str) -> str:
    proc = subprocess.run(
        [*skyctl_command(), *args, "-S", url], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"skyctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


async def poll(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Seconds until ``check`` holds (RuntimeError naming ``what`` past ``timeout``)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"never: {what} (after {timeout:g} s)")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def hub_and_site(root: Path) -> Iterator[Running]:
    """A hub and east, set up as in docs/sites.md (east's lease 2 s), the service ``web``
    created at the hub, a recorder running at east."""
    with hub_and_sites(root, west=False) as sites:
        skyctl("init", url=sites.hub)
        skyctl("site", "init", "east", "--hub", sites.hub, "--lease", LEASE, url=sites.east)
        web = ("create", "service", "web", "-n", NS, "-s", "app=web", "-p", "80:8080")
        skyctl(*web, url=sites.hub)
        recorder = subprocess.Popen(
            [*skyctl_command(), "record", "-S", sites.east],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield sites
        finally:
            recorder.terminate()
            recorder.wait(15)


async def _addresses(reg: Registry, site: str | None) -> list[str]:
    served = await reg.served_at(NS, "web", AtTime(datetime.now(UTC)), site=site)
    return [a.address for a in served.endpoints.addresses]


@contextlib.asynccontextmanager
async def arrivals(hub: str, stream: str, subjects: str) -> AsyncIterator[dict[str, float]]:
    """When (``time.monotonic``) each subject's first message after now arrives in the
    hub's ``stream``: a raw nats-py ordered consumer, as any reader of it would be."""
    seen: dict[str, float] = {}
    nc = await nats.connect(hub)

    async def arrived(msg: Msg) -> None:
        seen.setdefault(msg.subject, time.monotonic())

    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            subjects,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            cb=arrived,
        )
        try:
            yield seen
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


async def freshness(sites: Running, run: Run, samples: int) -> None:
    """A site's new task -> the hub's reading path, beside a raw consumer of the hub's
    sourced copy of the site's history, link up."""
    ours: list[float] = []
    resolved: list[float] = []
    raw: list[float] = []
    heartbeat: list[float] = []
    members = f"site.east.skyflow.member.{NS}.>"
    live = f"site.east.skyflow.task.{NS}.>"
    async with (
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(sites.hub) as at_hub,
        at_hub.resolver(sites=True) as resolver,
        arrivals(sites.hub, "SKYFLOW_SITE_MEMBERSHIP_east", members) as joins,
        arrivals(sites.hub, "SKYFLOW_SITE_TASKS_east", live) as beats,
    ):
        await resolver.answer(f"{NS}/web")  # followed from here on

        async def in_resolver(address: str, started: float) -> float:
            # (answered from memory: asked every millisecond)
            while True:
                found = await resolver.answer(f"{NS}/web")
                if address in [a.address for a in found.endpoints.addresses]:
                    return time.monotonic() - started
                if time.monotonic() - started > 30:
                    raise RuntimeError(f"never: {address} in the hub's Resolver")
                await asyncio.sleep(0.001)

        for i in range(samples + 1):  # (the first, a warm-up, is not counted)
            address = f"10.8.{i // 250}.{i % 250 + 1}"
            task = Task(namespace=NS, name=f"fresh-{i}", labels={"app": "web"}, address=address)
            async with at_east.announce(task, ttl=30):
                started = time.monotonic()

                async def shown(address: str = address) -> bool:
                    return address in await _addresses(at_hub, "east")

                took, in_time = await asyncio.gather(
                    poll(f"{task.name} at the hub", shown, 30), in_resolver(address, started)
                )
                join = f"site.east.skyflow.member.{NS}.{task.name}"
                beat = next((s for s in list(beats) if f".{task.name}." in s), None)
                await poll("the raw consumer's copy", _has(joins, join), 30)
                if i:
                    ours.append(took)
                    resolved.append(in_time)
                    raw.append(joins[join] - started)
                    if beat is not None:
                        heartbeat.append(beats[beat] - started)
            await asyncio.sleep(0.05)
        reads = []
        for _ in range(21):
            started = time.monotonic()
            await _addresses(at_hub, "east")
            reads.append(time.monotonic() - started)
    base = "baseline: raw consumer of the hub's copy of the site's history"
    for reader, times, note in (
        ("hub Resolver (`--sites`)", resolved, f"{base}; the Resolver follows that copy"),
        ("hub `get endpoints --site`", ours, base),
    ):
        for q in (50, 99):
            run.add(
                Result(
                    f"sites: site task -> {reader} (p{q}, link up)",
                    percentile(times, q) * 1000,
                    percentile(raw, q) * 1000,
                    "ms",
                    "time",
                    None,
                    len(times),
                    note,
                )
            )
    run.add(
        Result(
            "sites: one hub read of a site's endpoints (`served_at`, median)",
            median(reads) * 1000,
            None,
            "ms",
            "absolute",
            None,
            len(reads),
            f"{samples + 1} tasks in the site's history; the loop above reads back to back",
        )
    )
    if heartbeat:
        run.add(
            Result(
                "sites: site heartbeat -> hub's copy of live tasks (p50, raw consumer)",
                percentile(heartbeat, 50) * 1000,
                None,
                "ms",
                "absolute",
                None,
                len(heartbeat),
                "for scale: sourcing alone, no recorder in between",
            )
        )


async def site_reads(sites: Running, run: Run, transitions: int) -> None:
    """A one-shot read of a site's tasks at the hub (``Registry.site_tasks``: ``get
    endpoints``, ``describe``, the web UI; the Resolver follows instead): with
    ``transitions`` kept in a site's history, that read (each task's last transition, one
    multi-last request) beside reading the whole copy as of a moment (the time-travel
    read, and what the read was before 2026-12-06)."""
    tasks = 100
    subjects = [f"skyflow.member.{NS}.hist-{i}" for i in range(tasks)]
    async with await Registry.connect(sites.east) as at_east:
        await at_east.log.membership(create=True)
    nc = await nats.connect(sites.east)
    try:
        js = nc.jetstream()
        now = datetime.now(UTC)
        for n in range(transitions):
            i = n % tasks
            task = Task(
                namespace=NS, name=f"hist-{i}", labels={"app": "hist"}, address=f"10.9.0.{i + 1}"
            )
            event: MembershipEvent
            if n < tasks:
                event = TaskJoined(at=now, source_seq=0, instance=f"i{i}", since=now, task=task)
            else:
                ready = task.model_copy(update={"ready": bool(n // tasks % 2)})
                event = TaskReadinessChanged(at=now, source_seq=0, instance=f"i{i}", task=ready)
            await js.publish(subjects[i], encode_membership(event), stream=MEMBERSHIP_STREAM)
    finally:
        await nc.close()

    async def copied() -> bool:
        held, _ = await _messages(sites.hub, "SKYFLOW_SITE_MEMBERSHIP_east")
        return held >= transitions

    await poll(f"{transitions} transitions in the hub's copy", copied, 120)
    now_reads: list[float] = []
    all_reads: list[float] = []
    async with await Registry.connect(sites.hub) as at_hub:
        copy = await at_hub.log.membership(site="east")
        for _ in range(21):
            started = time.monotonic()
            (east,) = await at_hub.site_tasks(("east",))
            now_reads.append(time.monotonic() - started)
            assert len([t for t in east.tasks if t.name.startswith("hist-")]) == tasks
            started = time.monotonic()
            await copy.as_of("skyflow.member.*.*", time.time_ns())
            all_reads.append(time.monotonic() - started)
    run.add(
        Result(
            f"sites: a one-shot read of a site's tasks, {transitions} transitions kept (median)",
            median(now_reads) * 1000,
            median(all_reads) * 1000,
            "ms",
            "time",
            None,
            len(now_reads),
            f"{tasks} tasks; baseline: the same copy read whole, as of a moment (as the "
            "read did before 2026-12-06)",
        )
    )


def _has(seen: dict[str, float], subject: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return subject in seen

    return check


@dataclass
class Healed:
    """One cut, timed from its heal, in seconds."""

    cut_s: float
    link: float = 0.0
    live: float = 0.0
    history: float = 0.0
    mirror: float = 0.0


@dataclass
class CutSite:
    cut_s: float
    sites: Running
    runs: list[Healed] = field(default_factory=list)


async def _messages(url: str, stream: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.state.messages, info.state.last_seq
    finally:
        await nc.close()


async def one_cut(where: CutSite, round_no: int) -> Healed:
    """Cut east's link for ``cut_s``; during it a task is born and dies at east and a
    service is created at the hub; time the heal."""
    sites, cut_s = where.sites, where.cut_s
    hub, east = sites.hub, sites.east

    async def state() -> str:
        async with session(hub) as at_hub:
            (report,) = await read_sites(at_hub, ("east",))
        return report.state

    async def live() -> bool:
        return await state() == "live"

    async def history() -> bool:
        at_site, _ = await _messages(east, "SKYFLOW_MEMBERSHIP")
        heard, _ = await _messages(hub, "SKYFLOW_SITE_MEMBERSHIP_east")
        return heard == at_site

    async def mirror() -> bool:
        _, at_hub = await _messages(hub, "SKYFLOW_SERVICES")
        _, at_site = await _messages(east, "SKYFLOW_SERVICES")
        return at_site == at_hub

    await poll("east live before the cut", live, DEADLINE_S)
    await poll("the hub current before the cut", history, DEADLINE_S)
    async with await Registry.connect(east) as at_east:
        sites.link.cut()
        cut_at = time.monotonic()
        try:
            name = f"brief-{int(cut_s)}-{round_no}"
            task = Task(namespace=NS, name=name, labels={"app": "web"}, address="10.9.0.1")
            async with at_east.announce(task, ttl=5):

                async def recorded() -> bool:
                    return "10.9.0.1" in await _addresses(at_east, None)

                await poll(f"{name} recorded at east", recorded, 30)
            await asyncio.to_thread(
                skyctl, "create", "service", f"during-{int(cut_s)}-{round_no}", "-n", NS,
                "-s", "app=x", "-p", "80", url=hub,
            )  # fmt: skip
            await asyncio.sleep(max(0.0, cut_s - (time.monotonic() - cut_at)))
        finally:
            sites.link.heal()
    healed_at = time.monotonic()
    nc = await nats.connect(hub)

    async def link() -> bool:
        with contextlib.suppress(nats.errors.TimeoutError, nats.errors.NoRespondersError):
            await nc.request("$JS.east.API.INFO", b"", timeout=0.5)
            return True
        return False

    async def since(what: str, check: Callable[[], Awaitable[bool]]) -> float:
        await poll(what, check, DEADLINE_S)
        return time.monotonic() - healed_at

    try:
        timed = await asyncio.gather(
            since("the link back", link),
            since("east live", live),
            since("the hub's copy of east's history current", history),
            since("east's mirror current", mirror),
        )
    finally:
        await nc.close()
    healed = Healed(cut_s, *timed)
    log(
        f"{cut_s:g} s cut, round {round_no}: link {healed.link:.1f} s, live {healed.live:.1f} s, "
        f"history {healed.history:.1f} s, mirror {healed.mirror:.1f} s after the heal"
    )
    return healed


async def cuts(wheres: list[CutSite], run: Run, rounds: int) -> None:
    for round_no in range(1, rounds + 1):
        done = await asyncio.gather(*(one_cut(w, round_no) for w in wheres))
        for where, healed in zip(wheres, done, strict=True):
            where.runs.append(healed)
    for where in wheres:
        runs = where.runs

        def each(values: list[float]) -> str:
            return ", ".join(f"{v:.1f}" for v in values)

        history = [r.history for r in runs]
        link = [r.link for r in runs]
        run.add(
            Result(
                f"sites: heal -> hub current, {where.cut_s:g} s cut (median of {len(runs)})",
                median(history),
                median(link),
                "s",
                "time",
                None,
                len(runs),
                f"hub's copy of the history current: {each(history)} s; live: "
                f"{each([r.live for r in runs])} s; baseline, the link back: {each(link)} s; "
                f"site's mirror current: {each([r.mirror for r in runs])} s",
            )
        )


@contextlib.contextmanager
def site_watch(sites: Running) -> Iterator[None]:
    """``skyctl site watch`` at the hub, in a process of its own, as cluster/sites/start
    runs it."""
    proc = subprocess.Popen(
        [*skyctl_command(), "site", "watch", "-S", sites.hub],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(15)


async def watch_experiment(all_sites: list[Running], run: Run, rounds: int) -> None:
    half = len(all_sites) // 2
    wheres = [CutSite(40.0, sites) for sites in all_sites]
    with contextlib.ExitStack() as watchers:
        for sites in all_sites[:half]:
            watchers.enter_context(site_watch(sites))
        for round_no in range(1, rounds + 1):
            done = await asyncio.gather(*(one_cut(w, round_no) for w in wheres))
            for where, healed in zip(wheres, done, strict=True):
                where.runs.append(healed)
    for sites in all_sites:
        at_site, _ = await _messages(sites.east, "SKYFLOW_MEMBERSHIP")
        heard, _ = await _messages(sites.hub, "SKYFLOW_SITE_MEMBERSHIP_east")
        if heard != at_site:
            raise RuntimeError(f"the hub holds {heard} transitions of east's {at_site}")
    with_it = [r.history for w in wheres[:half] for r in w.runs]
    without = [r.history for w in wheres[half:] for r in w.runs]
    run.add(
        Result(
            "sites: heal -> hub current, 40 s cut, `skyctl site watch` at the hub (max)",
            max(with_it),
            max(without),
            "s",
            "time",
            None,
            len(with_it),
            "watched: " + ", ".join(f"{v:.1f}" for v in with_it) + " s; unwatched "
            "(baseline): " + ", ".join(f"{v:.1f}" for v in without) + " s; site's mirror "
            "(no watch can resume it): "
            + ", ".join(f"{r.mirror:.1f}" for w in wheres for r in w.runs)
            + " s; nothing doubled",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sites", description=__doc__)
    parser.add_argument("--samples", type=int, default=50, help="freshness samples")
    parser.add_argument("--rounds", type=int, default=3, help="cuts of each length")
    parser.add_argument(
        "--transitions", type=int, default=5000, help="kept in a site's history, for its read"
    )
    parser.add_argument(
        "--watch", type=int, default=0, metavar="ROUNDS", help="skyctl site watch's rows alone"
    )
    args = parser.parse_args(argv)
    run = Run.started(
        "sites",
        argv,
        {"samples": args.samples, "rounds": args.rounds, "transitions": args.transitions},
    )
    with tempfile.TemporaryDirectory(prefix="sites-bench-") as folder:
        root = Path(folder)
        if args.watch:
            with contextlib.ExitStack() as stack:
                all_sites = [stack.enter_context(hub_and_site(root / f"r{i}")) for i in range(6)]
                log(f"40 s cuts on 6 set-ups, 3 watched, {args.watch} rounds")
                asyncio.run(watch_experiment(all_sites, run, args.watch))
        else:
            _cuts_and_freshness(root, run, args)
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    for result in run.results:
        if result.note:
            print(f"- {result.scenario}: {result.note}")


def _cuts_and_freshness(root: Path, run: Run, args: argparse.Namespace) -> None:
    with hub_and_site(root / "fresh") as sites:
        log(f"freshness: {args.samples} tasks announced at east, link up")
        asyncio.run(freshness(sites, run, args.samples))
        log(f"the hub's read of east with {args.transitions} transitions kept")
        asyncio.run(site_reads(sites, run, args.transitions))
    with contextlib.ExitStack() as stack:
        wheres = [
            CutSite(cut, stack.enter_context(hub_and_site(root / f"cut{cut:g}"))) for cut in CUTS
        ]
        log(f"cuts of {', '.join(f'{c:g}' for c in CUTS)} s at once, {args.rounds} rounds")
        asyncio.run(cuts(wheres, run, args.rounds))


if __name__ == "__main__":
    main()
