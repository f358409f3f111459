"""Sustained writes with three watchers attached: nothing fails, and every watcher ends
where the fold of the log does. A few seconds of it; the figures (writes per second held,
the watchers' lag) are a benchmark: ``python -m benchmarks.load``."""

from __future__ import annotations

from benchmarks.load import run_load
from registry.jetstream.server import NatsServer


async def test_writes_with_three_watchers_end_where_the_fold_does(
    fresh_server: NatsServer,
) -> None:
    load = await run_load(fresh_server.url, seconds=4, workers=8)
    assert load.errors == []
    assert load.creates > 8 and load.deletes > 0
    assert len(load.watchers_live) == 3
    for live in load.watchers_live:
        assert live == load.folded  # every watcher's final state is the fold of the log
