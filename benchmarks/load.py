"""``python -m benchmarks.load``: sustained creates and deletes through the library, with
three watchers in another process, for a while (60 s by default).

Prints the writes per second held (every write fsynced) and the watchers' lag from an
event's time to its arrival, p50/p99/max. The same run's check, that every watcher's
final state is the fold of the log, is what the test suite keeps
(``tests/services/test_load.py``, a few seconds of it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import median, percentile
from events import Service
from registry.client import Registry
from registry.errors import RegistryError
from registry.jetstream.server import NatsServer
from registry.services.projector import rebuild

__all__ = ["Load", "run_load"]

WORKERS = 32
NAMESPACE = "load"


@dataclass
class Load:
    """What one load run saw."""

    seconds: float
    creates: int = 0
    deletes: int = 0
    errors: list[RegistryError] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # every watcher's, seconds
    watchers_live: list[dict[str, int]] = field(default_factory=list)  # each final state
    folded: dict[str, int] = field(default_factory=dict)  # the fold of the log, name -> seq

    @property
    def writes_per_second(self) -> float:
        return (self.creates + self.deletes) / self.seconds


async def run_load(url: str, seconds: float, workers: int = WORKERS) -> Load:
    """``workers`` writers create services and delete older ones for ``seconds``, while
    three watchers follow the namespace from another process."""
    watchers = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.load_watchers",
        url,
        NAMESPACE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watchers.stdout is not None
    ready = (await asyncio.wait_for(watchers.stdout.readline(), 60)).strip()
    if ready != b"ready":
        raise RuntimeError(f"the watchers did not start: {ready!r}")
    load = Load(seconds)
    async with await Registry.connect(url) as registry:
        stop_at = time.monotonic() + seconds

        async def worker(k: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                try:
                    await registry.create(Service(namespace=NAMESPACE, name=f"w{k}-{i}", ports=()))
                    load.creates += 1
                    if i >= 3:  # keep a few live per worker; delete an older one
                        await registry.delete(NAMESPACE, f"w{k}-{i - 3}")
                        load.deletes += 1
                except RegistryError as exc:
                    load.errors.append(exc)
                i += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(workers)))
        load.seconds = time.monotonic() - started
        await registry.create(Service(namespace=NAMESPACE, name="load-done"))
        out, err = await asyncio.wait_for(watchers.communicate(), 120)
        if watchers.returncode != 0:
            raise RuntimeError(f"the watchers failed: {err.decode()}")
        results = json.loads(out.decode().strip().splitlines()[-1])
        folded = (await rebuild(registry.log, f"skyflow.svc.{NAMESPACE}.*")).projection
    load.folded = {key[1]: record.seq for key, record in folded.services.items()}
    load.watchers_live = [result["live"] for result in results]
    load.lags = [lag for result in results for lag in result["lags"]]
    return load


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to load")
    parser.add_argument("--workers", type=int, default=WORKERS, help="writers in flight")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        load = asyncio.run(run_load(server.url, args.seconds, args.workers))
    equal = all(live == load.folded for live in load.watchers_live)
    print(
        f"\n| load ({args.workers} writers, 3 watchers in another process) | figure |\n"
        f"|---|---|\n"
        f"| writes/s held for {load.seconds:.0f} s (every write fsynced) "
        f"| {load.writes_per_second:,.0f} |\n"
        f"| creates / deletes | {load.creates:,} / {load.deletes:,} |\n"
        f"| errors | {len(load.errors)} |\n"
        f"| watcher lag p50 / p99 / max | {median(load.lags) * 1000:.1f} / "
        f"{percentile(load.lags, 99) * 1000:.1f} / {max(load.lags) * 1000:.0f} ms |\n"
        f"| each watcher's final state equals the fold of the log | {equal} |"
    )


if __name__ == "__main__":
    main()
