"""``python -m benchmarks.apply``: only row (e), ``skyctl apply -f`` of 1,000 new services
(a fresh process, timed from start to exit) against ``Registry.create_many`` of the same
services in a running program, in alternating rounds against one fresh server.

The full run (``python -m benchmarks``) measures the same row once, among everything else;
this one takes ``--runs`` samples of each and prints their medians.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from benchmarks.commands import skyctl_command, timed
from benchmarks.modes import running
from benchmarks.report import median
from benchmarks.run import APPLY_COUNT, manifest_services, manifests, precompile
from registry.client import Registry

__all__ = ["main"]


async def rounds(url: str, env: dict[str, str], folder: Path, runs: int, count: int) -> None:
    skyctl = skyctl_command()
    applied: list[float] = []
    created: list[float] = []
    async with await Registry.connect(url, actor="bench@host") as registry:
        for i in range(runs):
            path = folder / f"many-{i}.yaml"
            path.write_text(manifests(f"apply-{i}", count))
            applied.append(await asyncio.to_thread(timed, [*skyctl, "apply", "-f", str(path)], env))
            services = manifest_services(f"create-{i}", count)
            started = time.perf_counter()
            outcomes = await registry.create_many(services)
            created.append((time.perf_counter() - started) * 1000)
            assert not [o for o in outcomes if isinstance(o, Exception)]
    ours, base = count / median(applied) * 1000, count / median(created) * 1000
    print(f"apply -f ms:     {', '.join(f'{s:.0f}' for s in applied)}")
    print(f"create_many ms:  {', '.join(f'{s:.0f}' for s in created)}")
    print(
        f"(e) skyctl apply -f of {count:,} services: {ours:,.0f} services/s; "
        f"create_many: {base:,.0f} services/s; ratio {ours / base:.2f} (target >= 0.5); "
        f"medians of {runs}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.apply", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="rounds of each")
    parser.add_argument("--count", type=int, default=APPLY_COUNT, help="services per round")
    args = parser.parse_args(argv)
    precompile()
    with tempfile.TemporaryDirectory() as folder, running("plain", Path(folder) / "srv") as mode:
        assert mode is not None
        asyncio.run(rounds(mode.url, mode.client_env(), Path(folder), args.runs, args.count))


if __name__ == "__main__":
    main()
