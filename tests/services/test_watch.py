"""List-then-watch is one read: nothing missed, nothing doubled (pain point 3)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from events import Service
from registry.client import Registry
from registry.services.projection import Change
from registry.services.watch import Snapshot


async def test_changes_during_the_initial_list_arrive_exactly_once(url: str, ns: str) -> None:
    async with await Registry.connect(url) as writer, await Registry.connect(url) as reader:
        # A namespace big enough that the initial list takes a while to read.
        made = await writer.create_many(
            [Service(namespace=ns, name=f"pre-{i}") for i in range(1500)]
        )
        assert not [m for m in made if isinstance(m, Exception)]

        async def churn() -> list[tuple[str, str]]:
            done = []
            for i in range(150):
                await writer.create(Service(namespace=ns, name=f"new-{i}"))
                done.append(("ADDED", f"new-{i}"))
                if i % 3 == 0:
                    await writer.delete(ns, f"pre-{i}")
                    done.append(("DELETED", f"pre-{i}"))
            return done

        stream = reader.watch(ns)
        churner = asyncio.create_task(churn())
        first = await anext(stream)
        assert isinstance(first, Snapshot)
        live = {r.service.name for r in first.records}
        seen: list[tuple[str, str]] = []
        expected = await churner
        final = {r.service.name for r in await writer.list(ns)}
        while live != final:
            change = await asyncio.wait_for(anext(stream), 10)
            assert isinstance(change, Change)
            seen.append((change.kind, change.record.service.name))
            if change.kind == "ADDED":
                assert change.record.service.name not in live, "ADDED twice"
                live.add(change.record.service.name)
            else:
                live.remove(change.record.service.name)
        await stream.aclose()  # type: ignore[attr-defined]
        # Whatever the snapshot already held is not repeated; the rest arrived in order.
        assert seen == expected[len(expected) - len(seen) :]


async def test_watch_one_service_by_name(url: str, ns: str) -> None:
    async with await Registry.connect(url) as reg:
        await reg.create(Service(namespace=ns, name="other"))
        stream = reg.watch(ns, "mine")
        snapshot = await anext(stream)
        assert isinstance(snapshot, Snapshot) and snapshot.records == []
        await reg.create(Service(namespace=ns, name="other2"))
        await reg.create(Service(namespace=ns, name="mine"))
        await reg.delete(ns, "mine")
        kinds = [
            (c.kind, c.record.service.name)
            for c in [await asyncio.wait_for(anext(stream), 5) for _ in range(2)]
            if isinstance(c, Change)
        ]
        assert kinds == [("ADDED", "mine"), ("DELETED", "mine")]
        await stream.aclose()  # type: ignore[attr-defined]


def test_cli_watch_prints_list_then_changes_and_ends_quietly_on_ctrl_c(url: str, ns: str) -> None:
    env = {**os.environ, "NATS_URL": url}

    def run(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "cli", *args, "-n", ns], env=env, check=True, capture_output=True
        )

    run("create", "svc", "before", "-p", "80")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "get", "svc", "--watch", "-n", ns],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    header = watcher.stdout.readline()
    assert header.split()[:2] == ["EVENT", "NAME"]
    assert watcher.stdout.readline().split()[:2] == ["ADDED", "before"]
    run("create", "svc", "after", "-p", "81")
    assert watcher.stdout.readline().split()[:2] == ["ADDED", "after"]
    run("delete", "svc", "before")
    assert watcher.stdout.readline().split()[:2] == ["DELETED", "before"]
    watcher.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = watcher.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert watcher.returncode == 0
    assert out == "" and err == ""


def test_cli_watch_json_lines(url: str, ns: str) -> None:
    import json

    env = {**os.environ, "NATS_URL": url}
    subprocess.run(
        [sys.executable, "-m", "cli", "create", "svc", "j", "-n", ns],
        env=env,
        check=True,
        capture_output=True,
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "get", "svc", "-w", "-o", "json", "-n", ns],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    event = json.loads(watcher.stdout.readline())
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "j"
    watcher.send_signal(signal.SIGINT)
    watcher.communicate(timeout=10)
    assert watcher.returncode == 0
