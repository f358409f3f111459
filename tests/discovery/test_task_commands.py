"""The task commands as a user runs them: ``announce task NAME ... -- PROGRAM`` (an
announcement that cannot outlive the program it stands for), its hint when no service
selects the task, ``get task NAME`` and ``describe task NAME``."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from registry.client import Registry
from tests.helpers import Lines, skyctl, start


async def _names(url: str, ns: str) -> list[str]:
    async with await Registry.connect(url) as registry:
        return [t.name for t in await registry.tasks(ns)]


async def test_a_program_that_exits_withdraws_its_task_at_once_with_its_status(
    url: str, ns: str
) -> None:
    program = "import time, sys; time.sleep(2); sys.exit(3)"
    proc = start(
        *("announce", "task", "sup", "-n", ns, "-a", "10.5.0.1", "--labels", "app=web"),
        *("--ttl", "60s", "--", sys.executable, "-c", program),
        url=url,
    )
    lines = Lines(proc)
    await lines.wait_for(lambda line: "announced while pid" in line)
    assert await _names(url, ns) == ["sup"]
    code = await asyncio.to_thread(proc.wait, 30)
    exited = time.monotonic()
    assert code == 3  # the program's status
    assert await _names(url, ns) == []  # withdrawn at once, not at its 60 s TTL
    assert time.monotonic() - exited < 5
    await lines.wait_for(lambda line: "withdrawn: the program exited (3)" in line)


async def test_sigterm_reaches_the_program_and_skyctl_exits_with_its_status(
    url: str, ns: str, tmp_path: Path
) -> None:
    marker = tmp_path / "got-sigterm"
    program = (
        "import signal, sys, time\n"
        f"def stop(*_): open({str(marker)!r}, 'w').write('yes'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "while True: time.sleep(0.1)\n"
    )
    proc = start(
        *("announce", "task", "sup2", "-n", ns, "-a", "10.5.0.2", "--labels", "app=web"),
        *("--ttl", "60s", "--", sys.executable, "-c", program),
        url=url,
    )
    await Lines(proc).wait_for(lambda line: "announced while pid" in line)
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0 and marker.read_text() == "yes"
    assert await _names(url, ns) == []


def test_a_program_that_cannot_start_is_one_line_and_announces_nothing(url: str, ns: str) -> None:
    got = skyctl(
        *("announce", "task", "nope", "-n", ns, "-a", "10.5.0.3"),
        *("--", "/nonexistent/program"),
        url=url,
    )
    assert got.code == 2 and got.err.count("\n") == 1 and "/nonexistent/program" in got.err
    assert asyncio.run(_names(url, ns)) == []


async def test_an_announce_no_service_selects_prints_a_hint(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        from events import Service

        await registry.create(Service(namespace=ns, name="web", selector={"app": "web"}))
    for labels, hinted in (("app=wbe", True), ("app=web", False)):
        proc = start(
            "announce", "task", "t", "-n", ns, "-a", "10.5.0.9", "--labels", labels, url=url
        )
        await Lines(proc).wait_for(lambda line: "announced" in line)
        assert proc.stderr is not None
        if hinted:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 30)
            assert "hint: no service in namespace" in line and "labels app=wbe" in line, line
        else:
            await asyncio.sleep(0.5)  # (a hint would follow the announcement at once)
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
        rest = proc.stderr.read()
        assert "hint:" not in rest, (labels, rest)


async def test_get_task_by_name(url: str, ns: str) -> None:
    """kubectl's ``get <kind> NAME``: one task, its object for -o yaml|json; not found is
    one line and exit 1; a name with -A is refused."""
    from events.task import Task

    async with await Registry.connect(url) as registry:
        task = Task(namespace=ns, name="one", labels={"app": "web"}, address="10.5.1.1")
        async with registry.announce(task, ttl=30):
            table = await asyncio.to_thread(skyctl, "get", "task", "one", "-n", ns, url=url)
            assert table.code == 0 and [r.split()[0] for r in table.lines] == ["NAME", "one"]
            yaml_out = await asyncio.to_thread(
                skyctl, "get", "task", "one", "-n", ns, "-o", "yaml", url=url
            )
            assert "kind: Task" in yaml_out.out and "address: 10.5.1.1" in yaml_out.out
            missing = await asyncio.to_thread(skyctl, "get", "task", "two", "-n", ns, url=url)
            assert missing.code == 1 and 'task "two" not found' in missing.err
            everywhere = await asyncio.to_thread(skyctl, "get", "task", "one", "-A", url=url)
            assert everywhere.code == 2 and everywhere.err.count("\n") == 1


async def test_describe_task_shows_it_in_full_and_who_selects_it(url: str, ns: str) -> None:
    from events import Service
    from events.task import Task

    async with await Registry.connect(url) as registry:
        await registry.create(Service(namespace=ns, name="web", selector={"app": "web"}))
        await registry.create(Service(namespace=ns, name="db", selector={"app": "db"}))
        task = Task(namespace=ns, name="one", labels={"app": "web"}, address="10.5.2.1")
        async with registry.announce(task, ttl=30):
            got = await asyncio.to_thread(skyctl, "describe", "task", "one", "-n", ns, url=url)
            assert got.code == 0, got.err
            fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in got.lines}
            assert fields["Address"] == "10.5.2.1" and fields["Ready"] == "true"
            assert fields["Selected By"] == "service/web" and fields["TTL"] == "30s"
            missing = await asyncio.to_thread(skyctl, "describe", "task", "x", "-n", ns, url=url)
            assert missing.code == 1 and missing.err.count("\n") == 1
