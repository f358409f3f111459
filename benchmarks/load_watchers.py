"""Three watchers in a process of their own, for the load (benchmarks/load.py).

Each follows the namespace until the service named "load-done" appears, then the
process prints one JSON line: every watcher's final live set and the observed lag from
an event's time to its arrival.

    python -m benchmarks.load_watchers URL NAMESPACE
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from registry.client import Registry
from registry.services.projection import Change
from registry.services.watch import Snapshot

WATCHERS = 3


async def watch_one(url: str, namespace: str, ready: asyncio.Event) -> dict[str, object]:
    lags: list[float] = []
    live: dict[str, int] = {}
    async with await Registry.connect(url) as registry:
        async for item in registry.watch(namespace):
            if isinstance(item, Snapshot):
                live = {r.service.name: r.seq for r in item.records}
                ready.set()
                continue
            assert isinstance(item, Change)
            lags.append((datetime.now(UTC) - item.event.time).total_seconds())
            name = item.record.service.name
            if item.kind == "DELETED":
                live.pop(name, None)
            else:
                live[name] = item.seq
            if name == "load-done":
                break
    return {"live": live, "lags": lags}


async def main(url: str, namespace: str) -> None:
    events = [asyncio.Event() for _ in range(WATCHERS)]
    tasks = [asyncio.create_task(watch_one(url, namespace, e)) for e in events]
    await asyncio.gather(*(e.wait() for e in events))
    print("ready", flush=True)
    results = await asyncio.gather(*tasks)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
