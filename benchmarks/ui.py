"""The web UI (``skyctl ui``), each row beside a baseline measured in the same run, on one
server holding ``--services`` services (10,000; in 10 namespaces):

1. **First page in the browser**: Chromium (playwright, headless) navigates to the
   services page; the time from starting the navigation to the last of the services'
   rows being in the DOM (a MutationObserver in the page notes it), beside a one-shot
   ``skyctl get svc -A -o json`` process reading the same services (no agent:
   ``SKYFLOW_AGENT=off``), in alternating rounds. Target: at most 2x.
2. **Change to browser**: with that page open and a ``skyctl get svc -A -w`` process
   running, ``--changes`` services are created one at a time through the library; for
   each, the time from the write's acknowledgement to the page's DOM holding its row (the
   observer's clock, corrected for its offset from ours) and to the watch printing its
   line (read by a thread as it comes). p50 and p99 of both; target: the browser's p99
   at most 50 ms over the watch's.
3. **Many browsers, one reader**: ``--clients`` plain HTTP server-sent-event clients of
   the same person (``/events``, as the page's EventSource opens it) against one, while
   ``--changes`` services are created; what the UI's own NATS connections asked of the
   server meanwhile (messages they sent it, from the server's monitoring endpoint
   ``/connz``), and the server's JetStream API requests (``/jsz``) for scale. Target: 100
   clients cost no more than one.

The UI runs as users run it: ``skyctl ui --anonymous`` in a process of its own (the
bundled server has no users; every visitor is one person).

    python -m benchmarks.ui                      # 10,000 services, 5 rounds (~3 min)
    python -m benchmarks.ui --services 1000 --runs 3 --changes 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright

from benchmarks.commands import free_port, skyctl_command, timed
from benchmarks.report import Result, Run, median, percentile
from benchmarks.run import precompile
from events import Port, Service
from registry.client import Registry
from registry.jetstream.server import NatsServer

__all__ = ["main"]

NAMESPACES = 10
LIVE_NS = "ui-live"  # where the changes are made
PAGE_RATIO = 2.0
LATENCY_OVER_WATCH_MS = 50.0
_SERVING = re.compile(r"Serving the SkyFlow UI on (http://\S+)")

# Runs in each page before its own script: notes (on the page's clock, ms since the epoch)
# when the services table first holds ``expected`` rows, and when a link to each service
# named ``prefix...`` first appears. The clock is read before anything is looked at.
_OBSERVER = """
(([expected, prefix]) => {
  window.__lastRow = 0;
  window.__seen = {};
  let rows = 0;  // rows of the services table added so far
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.tagName === "TR") rows += node.closest("#services tbody") ? 1 : 0;
        else if (node.closest("#services")) rows += node.querySelectorAll("tbody tr").length;
        if (!window.__lastRow && rows >= expected) window.__lastRow = now;
        const links = node.tagName === "A" ? [node] : node.getElementsByTagName("a");
        for (const link of links) {
          const text = link.textContent;
          if (text.startsWith(prefix) && !(text in window.__seen)) window.__seen[text] = now;
        }
      }
    }
  }).observe(document, {childList: true, subtree: true});
})(%s);
"""


def log(message: str) -> None:
    print(f"[ui {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _service(namespace: str, name: str) -> Service:
    return Service(
        namespace=namespace,
        name=name,
        selector={"app": name},
        ports=[Port(port=80, target_port=8080)],
    )


async def _seed(registry: Registry, count: int) -> None:
    services = [_service(f"ui-{i % NAMESPACES}", f"svc-{i:05d}") for i in range(count)]
    for start in range(0, count, 2000):
        await registry.create_many(services[start : start + 2000])


@contextmanager
def _ui(env: dict[str, str]) -> Iterator[str]:
    """``skyctl ui --anonymous`` on a free port; its base URL."""
    proc = subprocess.Popen(
        [*skyctl_command(), "ui", "--anonymous", "--listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = _SERVING.search(line)
        if match is None:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"skyctl ui did not start: {line}{err}")
        yield match.group(1).rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Watch:
    """``skyctl get svc -A -w``: each line's arrival time (ms since the epoch), by the
    names ``prefix...`` in it, read by a thread as the process prints them."""

    def __init__(self, env: dict[str, str], prefix: str) -> None:
        self.proc = subprocess.Popen(
            [*skyctl_command(), "get", "svc", "-A", "-w"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.pattern = re.compile(rf"\b({re.escape(prefix)}\d+)\b")
        self.lines = 0
        self.seen: dict[str, float] = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.time() * 1000
            self.lines += 1
            match = self.pattern.search(line)
            if match is not None:
                self.seen.setdefault(match.group(1), now)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)


async def _until(check: Any, what: str, timeout: float = 120.0, every: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        await asyncio.sleep(every)


async def _clock_offset(page: Page) -> float:
    """The page's clock minus ours (ms), from the closest of a few readings."""
    best: tuple[float, float] | None = None
    for _ in range(9):
        before = time.time() * 1000
        theirs = await page.evaluate("() => performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, theirs - (before + after) / 2)
    assert best is not None
    return best[1]


async def first_page(
    browser: Browser, base: str, env: dict[str, str], count: int, runs: int, run: Run
) -> None:
    """Row 1: the page in Chromium beside ``get svc -A -o json``, alternating rounds."""
    command = [*skyctl_command(), "get", "svc", "-A", "-o", "json"]
    pages: list[float] = []
    clis: list[float] = []
    for i in range(runs + 1):  # the first round warms both up and is not counted
        cli = await asyncio.to_thread(timed, command, env)
        context = await browser.new_context()
        await context.add_init_script(_OBSERVER % json.dumps([count, "svc-"]))
        page = await context.new_page()
        offset = await _clock_offset(page)
        started = time.time() * 1000
        await page.goto(base + "/", wait_until="commit", timeout=120_000)
        await page.wait_for_function("() => window.__lastRow > 0", timeout=120_000)
        last = await page.evaluate("() => window.__lastRow")
        shown = last - offset - started
        await context.close()
        log(f"round {i}: page {shown:.0f} ms, get -A -o json {cli:.0f} ms")
        if i:
            pages.append(shown)
            clis.append(cli)
    run.add(
        Result(
            f"first page of {count:,} services in Chromium (vs `get svc -A -o json`)",
            median(pages),
            median(clis),
            "ms",
            "time",
            PAGE_RATIO,
            runs,
        )
    )


async def change_latency(
    browser: Browser, base: str, env: dict[str, str], registry: Registry, changes: int, run: Run
) -> None:
    """Row 2: each change's ack -> the page's DOM, and ack -> ``get -A -w``'s line."""
    prefix = "live-"
    context = await browser.new_context()
    await context.add_init_script(_OBSERVER % json.dumps([1, prefix]))
    page = await context.new_page()
    await page.goto(base + "/", wait_until="load", timeout=120_000)
    watch = Watch(env, prefix)
    try:
        listed = await registry.list()
        await _until(lambda: _true(watch.lines > len(listed)), "the watch's first listing")
        # No waiting for the page's stream to open: it opens at the page's mark, so it
        # gets every change after the table it was served, however late it opens.
        offset = await _clock_offset(page)
        browser_ms: list[float] = []
        watch_ms: list[float] = []
        for i in range(changes):
            name = f"{prefix}{i}"
            await registry.create(_service(LIVE_NS, name))
            acked = time.time() * 1000

            async def both(name: str = name) -> bool:
                seen = await page.evaluate("(n) => window.__seen[n] || 0", name)
                return bool(seen) and name in watch.seen

            # Looked at every 20 ms: the times are the page's and the watch's own, and
            # asking the page more often would take its main thread from the change.
            await _until(both, f"{name} in the page and the watch", every=0.02)
            seen = await page.evaluate("(n) => window.__seen[n]", name)
            browser_ms.append(seen - offset - acked)
            watch_ms.append(watch.seen[name] - acked)
            log(f"{name}: browser {browser_ms[-1]:.1f} ms, watch {watch_ms[-1]:.1f} ms")
            await asyncio.sleep(0.05)
        log(
            f"browser p50 {percentile(browser_ms, 50):.1f} ms p99 "
            f"{percentile(browser_ms, 99):.1f} ms; watch p50 {percentile(watch_ms, 50):.1f} ms "
            f"p99 {percentile(watch_ms, 99):.1f} ms"
        )
    finally:
        watch.close()
        await context.close()
    n = len(browser_ms)
    b50, b99 = percentile(browser_ms, 50), percentile(browser_ms, 99)
    w50, w99 = percentile(watch_ms, 50), percentile(watch_ms, 99)
    p50 = "change -> browser DOM p50 (vs -> `get -A -w` line)"
    run.add(Result(p50, b50, w50, "ms", "delta", None, n))
    run.add(
        Result(
            "change -> browser DOM p99 (vs -> `get -A -w` line)",
            b99,
            w99,
            "ms",
            "delta",
            LATENCY_OVER_WATCH_MS,
            n,
        )
    )
    apart = [b - w for b, w in zip(browser_ms, watch_ms, strict=True)]
    each = "  (per change, browser - watch, p50)"
    run.add(Result(each, percentile(apart, 50), None, "ms", "absolute", None, n))
    run.add(
        Result(each.replace("p50", "p99"), percentile(apart, 99), None, "ms", "absolute", None, n)
    )


async def _true(value: bool) -> bool:
    return value


def _monitor(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        data: dict[str, Any] = json.load(answer)
        return data


def _work(port: int, skip: set[int]) -> tuple[int, int, int]:
    """So far: messages the UI's connections (every client connection but ``skip``) sent
    the server (its requests), messages the server delivered to them, and the server's
    JetStream API requests."""
    connections = _monitor(port, "/connz?limit=10000")["connections"]
    ours = [c for c in connections if c["cid"] not in skip]
    api = _monitor(port, "/jsz?accounts=true")["api"]["total"]
    return sum(c["in_msgs"] for c in ours), sum(c["out_msgs"] for c in ours), api


async def fan_out(
    base: str,
    monitor: int,
    writer: set[int],
    registry: Registry,
    clients: int,
    changes: int,
    round_no: int,
    window: float,
    settle: float,
) -> tuple[int, int, int]:
    """The UI's NATS work while ``clients`` SSE clients are open and ``changes`` services
    are created (each seen by every client): messages between the UI and the server, and
    JetStream API requests."""
    received = [0] * clients
    opened = [asyncio.Event() for _ in range(clients)]
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base, timeout=None, limits=limits) as http:

        async def client(i: int) -> None:
            async with http.stream("GET", "/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("retry:"):
                        opened[i].set()
                    elif line.startswith("id: "):
                        received[i] += 1

        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        try:
            for event in opened:
                await asyncio.wait_for(event.wait(), 60)
            await asyncio.sleep(0.5)
            # A window of the same length for every N (the server's idle heartbeats to
            # the UI's consumers come by the clock): a change every window / changes, and
            # the window ends ``settle`` seconds after.
            before = await asyncio.to_thread(_work, monitor, writer)
            started = time.monotonic()
            for i in range(changes):
                await asyncio.sleep(max(0.0, started + i * window / changes - time.monotonic()))
                await registry.create(_service(LIVE_NS, f"fan-{round_no}-{i}"))
            await _until(lambda: _true(min(received) >= changes), "every client's events")
            if time.monotonic() > started + window + settle:
                log(f"{clients} clients: the changes took longer than the {window:g} s window")
            await asyncio.sleep(max(0.0, started + window + settle - time.monotonic()))
            after = await asyncio.to_thread(_work, monitor, writer)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    sent, delivered, api = (a - b for a, b in zip(after, before, strict=True))
    return sent, delivered, api


async def scenario(
    url: str, monitor: int, args: argparse.Namespace, run: Run, folder: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(NATS_URL=url, SKYFLOW_AGENT="off")
    async with await Registry.connect(url) as registry:
        writer = {c["cid"] for c in _monitor(monitor, "/connz?limit=10000")["connections"]}
        log(f"seeding {args.services:,} services")
        await _seed(registry, args.services)
        with _ui(env) as base:
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            if chromium is None:
                raise RuntimeError("no chromium on PATH (Debian: apt-get install chromium)")
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=chromium, headless=True)
                try:
                    log(f"first page: {args.runs} rounds")
                    await first_page(browser, base, env, args.services, args.runs, run)
                    log(f"change latency: {args.changes} changes")
                    await change_latency(browser, base, env, registry, args.changes, run)
                finally:
                    await browser.close()
            log(f"fan-out: 1 and {args.clients} SSE clients, {args.changes} changes each")
            one: list[tuple[int, int, int]] = []
            many: list[tuple[int, int, int]] = []

            async def counted(clients: int, round_no: int) -> tuple[int, int, int]:
                return await fan_out(
                    base, monitor, writer, registry, clients, args.changes, round_no,
                    args.window, args.settle,
                )  # fmt: skip

            for i in range(args.fan_rounds):  # alternating; medians: the follower's
                # periodic fresh read (every 30 s) falls in one window of a few
                one.append(await counted(1, 2 * i))
                many.append(await counted(args.clients, 2 * i + 1))
                log(f"round {i}: (sent, delivered, API) 1 client {one[-1]}, many {many[-1]}")

    def total(counts: list[tuple[int, int, int]]) -> float:
        # The least over the rounds: the follower's periodic fresh read (every 30 s, for
        # any number of clients) only ever adds to the window it falls in.
        return float(min(sent + delivered for sent, delivered, _ in counts))

    def shown(counts: list[tuple[int, int, int]]) -> str:
        return ", ".join(f"{s} sent + {d} delivered ({a} JS API)" for s, d, a in counts)

    note = (
        f"each round, messages between the UI's connections and the server, 1 client: "
        f"{shown(one)}; {args.clients} clients: {shown(many)}"
    )
    run.add(
        Result(
            f"NATS messages to and from the UI: {args.clients} SSE clients (vs 1), "
            f"{args.changes} changes in {args.window:g} s",
            total(many),
            total(one),
            "msgs",
            "time",
            1.0,
            args.fan_rounds,
            note,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__)
    parser.add_argument("--services", type=int, default=10_000, help="services in the registry")
    parser.add_argument("--runs", type=int, default=5, help="rounds of the first-page row")
    parser.add_argument("--changes", type=int, default=100, help="changes timed (rows 2 and 3)")
    parser.add_argument("--clients", type=int, default=100, help="SSE clients in row 3")
    parser.add_argument(
        "--fan-rounds", type=int, default=3, help="alternating rounds of 1 and --clients"
    )
    parser.add_argument("--window", type=float, default=5.0, help="row 3: seconds of changes")
    parser.add_argument("--settle", type=float, default=3.0, help="row 3: seconds after them")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    run = Run.started(
        "ui", argv, {"services": args.services, "changes": args.changes, "clients": args.clients}
    )
    precompile()
    monitor = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="ui-bench-") as name,
        NatsServer(Path(name) / "store", extra_args=["-m", str(monitor)]) as server,
    ):
        asyncio.run(scenario(server.url, monitor, args, run, Path(name)))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    for result in run.results:
        if result.note:
            print(f"\n{result.scenario}: {result.note}")
    if args.json is not None:
        run.write_json(args.json)


if __name__ == "__main__":
    main()
