"""Who served a service when, on a real server: ``skyctl record`` writes each task's
transitions once (a SIGKILL, a withdrawal, a readiness flip), a recorder killed and
restarted in between loses none the server still held and doubles none, two recorders at
once write each once, and ``get endpoints --at`` shows exactly the tasks that served."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime

from events import Service
from events.control import ReadinessAction
from events.membership import TaskJoined, TaskLeft, TaskReadinessChanged
from events.task import Task
from registry.client import Registry
from registry.discovery.served import task_transitions
from registry.services.when import AtTime
from tests.helpers import Lines, skyctl, start, until


async def recorder(url: str) -> tuple[subprocess.Popen[str], Lines]:
    proc = start("record", url=url)
    lines = Lines(proc)
    await lines.wait_for(lambda line: line.startswith("recording: caught up"), timeout=60)
    return proc, lines


def served(registry: Registry, ns: str, moment: datetime) -> Awaitable[dict[str, str]]:
    async def read() -> dict[str, str]:
        got = await registry.served_at(ns, "web", AtTime(moment))
        return {
            a.task: "draining" if a.draining else "ready" if a.ready else "not-ready"
            for a in got.endpoints.addresses
        }

    return read()


async def history(registry: Registry, ns: str, name: str) -> list[str]:
    """A task's transitions as ``joined``, ``ready``/``not-ready``, ``left:<how>``."""
    said = []
    for _, event in await task_transitions(registry.log, ns, name):
        match event:
            case TaskJoined():
                said.append("joined")
            case TaskReadinessChanged(task=task):
                said.append("ready" if task.ready else "not-ready")
            case TaskLeft(how=how):
                said.append(f"left:{how}")
    return said


def _task(ns: str, name: str, address: str) -> Task:
    return Task(namespace=ns, name=name, labels={"app": "web"}, address=address)


async def test_who_served_when_through_a_sigkill_a_withdrawal_a_flip_and_a_recorder_restart(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(Service(namespace=ns, name="web", selector={"app": "web"}))
        first, _ = await recorder(url)
        killed = start(
            *("announce", "task", "killed", "-n", ns, "--labels", "app=web", "-a", "10.8.0.1"),
            *("--ttl", "2s"),
            url=url,
        )
        await Lines(killed).wait_for(lambda line: line.startswith("task/killed announced"))
        async with (
            registry.announce(_task(ns, "stay", "10.8.0.2"), ttl=30),
            registry.announce(_task(ns, "flip", "10.8.0.3"), ttl=30) as flip,
        ):
            going = contextlib.AsyncExitStack()
            await going.enter_async_context(registry.announce(_task(ns, "go", "10.8.0.4"), ttl=30))
            every = {"killed": "ready", "stay": "ready", "flip": "ready", "go": "ready"}

            async def all_recorded() -> bool:
                return await served(registry, ns, datetime.now(UTC)) == every

            await until("four joins recorded", all_recorded)
            t1 = datetime.now(UTC)
            await asyncio.sleep(0.05)
            # The recorder dies; meanwhile a flip, a SIGKILL and a withdrawal.
            first.kill()
            await asyncio.to_thread(first.wait, 15)
            await flip.request(ReadinessAction.NOT_READY, "maintenance")
            killed.send_signal(signal.SIGKILL)
            await asyncio.to_thread(killed.wait, 15)
            await going.aclose()  # withdrawn

            async def expired() -> bool:
                return {t.name for t in await registry.tasks(ns)} == {"stay", "flip"}

            await until("the killed task expired", expired)
            second, _ = await recorder(url)  # catches up from what the server still holds
            t2 = datetime.now(UTC)
            await asyncio.sleep(0.05)
            third, _ = await recorder(url)  # and now two record at once
            await flip.request(ReadinessAction.READY)
            after = {"stay": "ready", "flip": "ready"}

            async def flipped_back() -> bool:
                return await served(registry, ns, datetime.now(UTC)) == after

            await until("the flip back recorded", flipped_back)
            t3 = datetime.now(UTC)
            await asyncio.sleep(0.05)

        async def all_gone() -> bool:
            return await served(registry, ns, datetime.now(UTC)) == {}

        await until("the last two withdrawals recorded", all_gone)
        assert await served(registry, ns, t1) == every
        assert await served(registry, ns, t2) == {"stay": "ready", "flip": "not-ready"}
        assert await served(registry, ns, t3) == after
        # Each transition once, whoever recorded it; the ones found late are marked so.
        assert await history(registry, ns, "flip") == [
            "joined",
            "not-ready",
            "ready",
            "left:withdrawn",
        ]
        assert await history(registry, ns, "stay") == ["joined", "left:withdrawn"]
        gone = await history(registry, ns, "go")
        assert gone[0] == "joined" and gone[1] in ("left:withdrawn", "left:unknown")
        assert len(gone) == 2, gone
        dead = await history(registry, ns, "killed")
        assert dead[0] == "joined" and dead[1] in ("left:expired", "left:unknown")
        assert len(dead) == 2, dead
        late = [e for _, e in await task_transitions(registry.log, ns, "flip") if not e.exact]
        assert [type(e).__name__ for e in late] == ["TaskReadinessChanged"]
        for proc in (second, third):
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
    # The CLI reads the same history, and warns where no recorder ran.
    moment = t2.isoformat().replace("+00:00", "Z")
    got = await asyncio.to_thread(
        skyctl, "get", "endpoints", "web", "-n", ns, "--at", moment, "-o", "wide", url=url
    )
    assert got.code == 0, got.err
    rows = {line.split()[-1]: line.split()[-2] for line in got.out.splitlines()[2:]}
    assert rows == {"stay": "true", "flip": "false"}, got.out
    assert got.out.startswith(f"service/web at {moment[:19]}Z (revision "), got.out
    events = await asyncio.to_thread(skyctl, "events", "--for", "task/flip", "-n", ns, url=url)
    assert events.code == 0 and events.out.count("\n") == 5, events.out
    assert "found late" in events.out and "maintenance" in events.out


async def test_a_supervised_program_leaves_saying_how_it_ended(url: str, ns: str) -> None:
    proc, _ = await recorder(url)
    program = "import sys, time; time.sleep(1); sys.exit(7)"
    done = await asyncio.to_thread(
        skyctl,
        *("announce", "task", "sup", "-n", ns, "-a", "10.8.1.1", "--labels", "app=x"),
        *("--", sys.executable, "-c", program),
        url=url,
    )
    assert done.code == 7, done.err
    async with await Registry.connect(url) as registry:

        async def left() -> bool:
            return len(await history(registry, ns, "sup")) == 2

        await until("the leave recorded", left)
        _, (_, gone) = await task_transitions(registry.log, ns, "sup")
        assert isinstance(gone, TaskLeft) and gone.how == "withdrawn"
        assert gone.reason == "program exited with status 7" and gone.exact
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 15)


def test_bad_at_and_for_are_one_line(url: str, ns: str) -> None:
    for args in (
        ["get", "endpoints", "-n", ns, "--at", "1h"],  # no NAME
        ["get", "endpoints", "web", "-n", ns, "--at", "yesterday"],
        ["events", "--for", "task/bad.name", "-n", ns],
        ["events", "--for", "pod/x", "-n", ns],
        ["events", "--for", "task/x", "-n", ns, "-f"],
    ):
        got = skyctl(*args, url=url)
        assert got.code == 2 and got.err.count("\n") == 1, (args, got.err)
