"""Sustained load through the library with three watchers attached."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import pytest

from events import Service
from registry.client import Registry
from registry.errors import RegistryError
from registry.jetstream.server import NatsServer
from registry.services.projector import rebuild

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("SKYFLOW_LOAD_SECONDS", "60"))
WORKERS = 32


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@pytest.mark.timeout(SECONDS + 120)
async def test_sustained_creates_and_deletes_with_three_watchers(
    fresh_server: NatsServer, report: Callable[[str], None]
) -> None:
    url, ns = fresh_server.url, "load"
    watchers = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.load_watchers",
        url,
        ns,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watchers.stdout is not None
    assert (await asyncio.wait_for(watchers.stdout.readline(), 30)).strip() == b"ready"

    done = {"create": 0, "delete": 0}
    errors: list[RegistryError] = []
    async with await Registry.connect(url) as registry:
        stop_at = time.monotonic() + SECONDS

        async def worker(k: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                try:
                    await registry.create(Service(namespace=ns, name=f"w{k}-{i}", ports=()))
                    done["create"] += 1
                    if i >= 3:  # keep a few live per worker; delete an older one
                        await registry.delete(ns, f"w{k}-{i - 3}")
                        done["delete"] += 1
                except RegistryError as exc:
                    errors.append(exc)
                i += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(WORKERS)))
        elapsed = time.monotonic() - started
        await registry.create(Service(namespace=ns, name="load-done"))
        out, err = await asyncio.wait_for(watchers.communicate(), 60)
        assert watchers.returncode == 0, err.decode()
        results = json.loads(out.decode().strip().splitlines()[-1])
        folded = (await rebuild(registry.log, f"skyflow.svc.{ns}.*")).projection
        expected = {key[1]: record.seq for key, record in folded.services.items()}

    assert errors == []
    for result in results:
        assert result["live"] == expected  # every watcher's final state is the fold of the log
    lags = [lag for result in results for lag in result["lags"]]
    writes = done["create"] + done["delete"]
    p50, p99 = statistics.median(lags), percentile(lags, 0.99)
    report(
        f"load: {writes / elapsed:,.0f} writes/s held for {elapsed:.0f} s ({done['create']} "
        f"creates, {done['delete']} deletes, {WORKERS} writers, every write fsynced); 3 watchers "
        f"in another process: lag p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {max(lags) * 1000:.0f} ms; final state of each = fold of the log"
    )
