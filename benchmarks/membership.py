"""Membership history: whether recording keeps up, and what "who served X at T" costs.

- **Recording under churn.** ``LIVE`` tasks stay announced (renewing) while, for
  ``SECONDS`` seconds, ``RATE / 2`` tasks join and ``RATE / 2`` leave every second in
  another namespace. ``skyctl record``'s recorder runs in a process of its own; the lag of
  each transition is when the membership stream stored it minus when the liveness stream
  stored what it was read from (both the server's clock). Baseline, in the same run and
  at the same churn: a raw nats-py loop in a process of its own that reads the liveness
  stream with an ordered consumer and, for each message whose bytes differ from its
  subject's last, publishes a small record to a stream of its own and waits for the
  acknowledgement (what recording must do at least, without folding, comparing against
  the history, or guarding against a second recorder).
- **``get endpoints --at`` over a long history.** ``TRANSITIONS`` transitions recorded for
  the ``TASKS`` tasks a service selects (written straight into the membership stream as a
  recorder writes them), and the same tasks live: ``Registry.served_at`` (the service as
  it was, and who was live, at a moment in the middle of the history) beside a live
  ``Registry.endpoints``, alternating, median of ``RUNS``.

    python -m benchmarks.membership                       # 50,000 live, 500/s, 1M kept
    python -m benchmarks.membership --live 5000 --transitions 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nats
from nats.aio.msg import Msg

from benchmarks.report import Result, Run, median, percentile
from events import Service
from events.membership import (
    TaskJoined,
    TaskReadinessChanged,
    encode_membership,
    member_subject,
)
from events.stamps import utc_now
from events.task import Task
from registry.client import Registry
from registry.discovery.announce import Announcement
from registry.discovery.recorder import Recorder
from registry.jetstream.server import NatsServer
from registry.services.when import AtTime

__all__ = ["main"]

LIVE_NS, CHURN_NS, AT_NS = "bench-live", "bench-churn", "bench-at"
BASELINE_STREAM = "BENCH_RECORD"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _task(ns: str, name: str, index: int) -> Task:
    address = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
    return Task(namespace=ns, name=name, labels={"app": "web"}, address=address)


# -- the processes that record -------------------------------------------------------


async def _recorder(url: str) -> None:
    async with await Registry.connect(url) as registry:
        recorder = Recorder(registry.log, on_note=lambda text: log(f"recorder: {text}"))
        running = asyncio.create_task(recorder.run())
        await recorder.caught_up.wait()
        print("ready", flush=True)
        await running


async def _raw_recorder(url: str) -> None:
    """The baseline: every changed message on a liveness subject, one acknowledged publish."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=BASELINE_STREAM, subjects=["bench.record.>"])
    last: dict[str, bytes] = {}
    queue: asyncio.Queue[tuple[str, bytes, int]] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        if last.get(msg.subject) == msg.data:
            return  # a renewal
        last[msg.subject] = msg.data
        stored = msg.metadata.timestamp.timestamp()
        queue.put_nowait((msg.subject, msg.data[:64], int(stored * 1e9)))

    await js.subscribe(f"skyflow.task.{CHURN_NS}.>", cb=on_msg, ordered_consumer=True)
    print("ready", flush=True)
    while True:
        subject, _, at_ns = await queue.get()
        body = json.dumps({"subject": subject, "at": at_ns}).encode()
        await js.publish(f"bench.record.{subject.split('.')[3]}", body)


def _start(role: str, url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.membership", role, url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"{role} did not start: {line!r}")
    return proc


# -- recording under churn -----------------------------------------------------------


async def _churn(url: str, rate: int, seconds: int, tag: str) -> tuple[int, int]:
    """``rate / 2`` joins and ``rate / 2`` leaves a second; the window (ns) it ran in."""
    half = rate // 2
    async with await Registry.connect(url) as registry:
        announcer = await registry.announcer()
        previous: list[Announcement] = []
        started = time.time_ns()
        loop = asyncio.get_running_loop()
        due = loop.time()
        for second in range(seconds):
            batch = [_task(CHURN_NS, f"{tag}-{second}-{i}", second * half + i) for i in range(half)]
            made = await announcer.announce(batch, 30)
            if previous:
                await announcer.withdraw(previous)
            previous = made
            due += 1.0
            await asyncio.sleep(max(0.0, due - loop.time()))
        await announcer.withdraw(previous)
        await announcer.close()
        return started, time.time_ns()


async def _lags_recorded(url: str, since_ns: int) -> list[float]:
    """Seconds from the liveness stream to the membership stream, for every transition of
    the churn namespace recorded since ``since_ns``."""
    async with await Registry.connect(url) as registry:
        membership = await registry.log.membership()
        messages = await membership.history(
            f"skyflow.member.{CHURN_NS}.*", since_ns=since_ns, limit=10_000_000
        )
    from registry.discovery.membership import member_from

    lags = []
    for message in messages:
        member = member_from(message)
        if member is not None and member.event.exact:
            lags.append((message.time_ns - member.at_ns) / 1e9)
    return lags


async def _lags_baseline(url: str, since_ns: int) -> list[float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.subscribe("bench.record.>", ordered_consumer=True)
    lags = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except nats.errors.TimeoutError:
                break
            stored = int(msg.metadata.timestamp.timestamp() * 1e9)
            at = json.loads(msg.data)["at"]
            if at >= since_ns:
                lags.append((stored - at) / 1e9)
    finally:
        await nc.close()
    return lags


async def recording(url: str, run: Run, live: int, rate: int, seconds: int) -> None:
    async with await Registry.connect(url) as registry:
        announcer = await registry.announcer()
        log(f"membership: {live:,} live tasks announced")
        await announcer.announce([_task(LIVE_NS, f"t{i}", i) for i in range(live)], 60)
        recorder = _start("recorder", url)
        try:
            log(f"membership: recorder caught up; {rate} joins+leaves/s for {seconds} s")
            window = await _churn(url, rate, seconds, "ours")
            await asyncio.sleep(3)
            ours = await _lags_recorded(url, window[0])
        finally:
            recorder.terminate()
            recorder.wait(30)
        raw = _start("raw", url)
        try:
            log("membership: the same churn beside the raw baseline")
            window = await _churn(url, rate, seconds, "raw")
            await asyncio.sleep(3)
            base = await _lags_baseline(url, window[0])
        finally:
            raw.terminate()
            raw.wait(30)
        await announcer.close()
    note = f"{live:,} live tasks renewing, {rate} joins+leaves/s for {seconds} s"
    for q in (50, 99):
        run.add(
            Result(
                f"recording lag p{q} (transition stored to recorded)",
                percentile(ours, q),
                percentile(base, q),
                "s",
                "absolute",
                1.0 if q == 99 else None,
                len(ours),
                note if q == 50 else f"{len(ours):,} transitions (baseline {len(base):,})",
            )
        )


# -- get endpoints --at over a long history ------------------------------------------


async def _fill(url: str, tasks: int, transitions: int) -> tuple[datetime, datetime]:
    """``transitions`` recorded for ``tasks`` tasks (a join each, then readiness flips),
    as a recorder writes them; when the history began and ended."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    first = utc_now()
    rounds = max(1, transitions // tasks)
    sent = 0
    for r in range(rounds):
        futures = []
        for i in range(tasks):
            task = _task(AT_NS, f"t{i}", i)
            if r == 0:
                event: TaskJoined | TaskReadinessChanged = TaskJoined(
                    at=utc_now(), source_seq=sent + 1, instance="i", since=first, task=task
                )
            else:
                flipped = task.model_copy(
                    update={"ready": r % 2 == 0, "reason": None if r % 2 == 0 else "check"}
                )
                event = TaskReadinessChanged(
                    at=utc_now(), source_seq=sent + 1, instance="i", task=flipped
                )
            futures.append(
                await js.publish_async(member_subject(AT_NS, f"t{i}"), encode_membership(event))
            )
            sent += 1
        await asyncio.gather(*futures)
        if r % 100 == 0:
            log(f"membership: {sent:,} transitions written")
    await nc.close()
    return first, utc_now()


async def at_cost(url: str, run: Run, tasks: int, transitions: int, runs: int) -> None:
    async with await Registry.connect(url) as registry:
        await registry.log.membership(create=True)
        await registry.create(Service(namespace=AT_NS, name="web", selector={"app": "web"}))
        log(f"membership: {transitions:,} transitions for {tasks:,} tasks")
        first, last = await _fill(url, tasks, transitions)
        middle = first + (last - first) / 2
        announcer = await registry.announcer()
        await announcer.announce([_task(AT_NS, f"t{i}", i) for i in range(tasks)], 60)
        live, past = [], []
        for _ in range(runs):
            started = time.perf_counter()
            now = await registry.endpoints(AT_NS, "web")
            live.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            then = await registry.served_at(AT_NS, "web", AtTime(middle))
            past.append((time.perf_counter() - started) * 1000)
        assert now.total == tasks and then.endpoints.total == tasks, (now.total, then.endpoints)
        await announcer.close()
    run.add(
        Result(
            "get endpoints --at (who served then) vs live",
            median(past),
            median(live),
            "ms",
            "time",
            2.0,
            runs,
            f"{transitions:,} transitions recorded, {tasks:,} tasks",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.membership", description=__doc__)
    parser.add_argument("--live", type=int, default=50_000, help="tasks live throughout")
    parser.add_argument("--rate", type=int, default=500, help="joins+leaves per second")
    parser.add_argument("--seconds", type=int, default=30, help="length of the churn")
    parser.add_argument("--tasks", type=int, default=1_000, help="tasks of the --at service")
    parser.add_argument("--transitions", type=int, default=1_000_000, help="recorded for them")
    parser.add_argument("--runs", type=int, default=21, help="reads timed each way")
    parser.add_argument("role", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "recorder":
        asyncio.run(_recorder(args.url))
        return
    if args.role == "raw":
        asyncio.run(_raw_recorder(args.url))
        return
    run = Run.started(
        "membership", argv, {"live": args.live, "rate": args.rate, "transitions": args.transitions}
    )
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        asyncio.run(recording(server.url, run, args.live, args.rate, args.seconds))
        asyncio.run(at_cost(server.url, run, args.tasks, args.transitions, args.runs))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())


if __name__ == "__main__":
    main()
