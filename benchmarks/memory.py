"""``python -m benchmarks.memory``: the projection-memory row alone, on a server of its own.

Seeds ``--services`` live services with ``create_many`` (one event each, no history: what
a live service costs does not depend on the deleted ones, which a rebuild drops; with
``--again``, each deleted and created again so its event carries a link), rebuilds
the projection under tracemalloc and prints bytes per live service beside the target. The
full run (``python -m benchmarks``) measures the same row after a million events; this
takes about a minute at 100,000 services where that takes twenty.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from benchmarks.report import Run
from benchmarks.run import FULL, log, memory_row, projection_memory, service
from registry.client import Registry
from registry.jetstream.server import NatsServer

__all__ = ["main"]


async def seed(url: str, services: int, concurrency: int, *, again: bool = False) -> None:
    """``services`` live services, ``FULL["namespace"]`` to a namespace, as the full run
    seeds them; ``again``: then deleted and created again, so that each live event links
    to the one before it (``prev``, 66 B more), as after the full run's history."""
    batch = [service(i, FULL["namespace"]) for i in range(services)]
    keys = [(s.namespace, s.name) for s in batch]
    async with await Registry.connect(url, actor="bench@host") as registry:
        outcomes = await registry.create_many(batch, concurrency=concurrency)
        if again:
            outcomes += await registry.delete_many(keys, concurrency=concurrency)
            outcomes += await registry.create_many(batch, concurrency=concurrency)
    failed = [o for o in outcomes if isinstance(o, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} writes failed, the first: {failed[0]}")


async def measure(url: str, args: argparse.Namespace, run: Run) -> None:
    log(f"seed: create_many of {args.services:,} services, {args.concurrency} in flight")
    await seed(url, args.services, args.concurrency, again=args.again)
    log("memory: rebuild under tracemalloc")
    held, count = await projection_memory(url, sites=args.sites)
    if count != args.services:
        raise RuntimeError(f"the rebuild holds {count:,} services, {args.services:,} were made")
    run.add(memory_row(held, count))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument(
        "--services", type=int, default=FULL["live"], help="live services to seed (100,000)"
    )
    parser.add_argument("--concurrency", type=int, default=256, help="writes in flight (seed)")
    parser.add_argument(
        "--again",
        action="store_true",
        help="delete and re-create every service before the rebuild (events with a link)",
    )
    parser.add_argument(
        "--sites",
        type=int,
        default=0,
        help="also log the N allocation sites that hold the most, per live service",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the row as JSON")
    args = parser.parse_args(argv)
    run = Run.started("memory", argv, {"live": args.services}, scale=args.services / FULL["live"])
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "store") as server:
        asyncio.run(measure(server.url, args, run))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print(run.table())
    if args.json:
        run.write_json(args.json)


if __name__ == "__main__":
    main()
