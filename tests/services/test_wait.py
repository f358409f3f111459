"""``skyctl wait service``: returns as soon as the condition holds (from a watch, so
within a fraction of a second of the change), at once when it holds already, exit 1 at
the timeout; a bad condition is one line, exit 2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from events import Service
from events.task import Task
from registry.client import Registry
from tests.helpers import Result, skyctl


async def timed(*args: str, url: str) -> tuple[Result, float]:
    """``skyctl`` in a thread (the test's loop goes on making changes), and when it ended."""

    def run() -> tuple[Result, float]:
        result = skyctl(*args, url=url)
        return result, time.monotonic()

    return await asyncio.to_thread(run)


async def test_wait_returns_within_a_moment_of_the_change(
    url: str, ns: str, report: Callable[[str], None]
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(Service(namespace=ns, name="web", selector={"app": "web"}))
        path = "jsonpath={.metadata.labels.tier}=front"
        waiting = asyncio.create_task(
            timed("wait", "svc", "web", "-n", ns, f"--for={path}", "--timeout", "30s", url=url)
        )
        await asyncio.sleep(1.0)  # the wait is following the service by now
        assert not waiting.done()
        await registry.apply(
            Service(namespace=ns, name="web", selector={"app": "web"}, labels={"tier": "front"})
        )
        changed = time.monotonic()
        result, ended = await asyncio.wait_for(waiting, 30)
        assert result.code == 0, result.err
        assert result.out == "service/web condition met: jsonpath={.metadata.labels.tier}=front\n"
        lag = ended - changed
        report(f"wait --for=jsonpath returned {lag * 1000:.0f} ms after the change was stored")
        assert lag < 2.0  # a watch, not a poll: far inside the 30 s timeout

        # Ready endpoints: a task announced for the service.
        waiting = asyncio.create_task(
            timed("wait", "svc", "web", "-n", ns, "--for=endpoints>=1", url=url)
        )
        await asyncio.sleep(1.0)
        assert not waiting.done()
        task = Task(namespace=ns, name="web-1", labels={"app": "web"}, address="10.1.0.1")
        announced = time.monotonic()  # the wait may see the task before announce returns
        async with registry.announce(task, ttl=30):
            result, ended = await asyncio.wait_for(waiting, 30)
        assert (result.code, result.out) == (0, "service/web condition met: 1 ready endpoint\n")
        report(f"wait --for=endpoints>=1 returned {(ended - announced) * 1000:.0f} ms after")
        assert ended - announced < 2.0

        waiting = asyncio.create_task(
            timed("wait", "svc", "web", "-n", ns, "--for=delete", url=url)
        )
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await registry.delete(ns, "web")
        deleted = time.monotonic()
        result, ended = await asyncio.wait_for(waiting, 30)
        assert (result.code, result.out) == (0, "service/web deleted\n"), result.err
        assert ended - deleted < 2.0


def test_a_condition_already_true_returns_at_once(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    started = time.monotonic()
    typed = skyctl("wait", "svc", "web", "-n", ns, "--for=jsonpath={.spec.type}=ClusterIP", url=url)
    assert typed.code == 0 and typed.out.startswith("service/web condition met"), typed.err
    gone = skyctl("wait", "svc", "gone", "-n", ns, "--for=delete", url=url)
    assert (gone.code, gone.out) == (0, "service/gone deleted\n")
    none = skyctl("wait", "svc", "web", "-n", ns, "--for=endpoints>=0", url=url)
    assert none.code == 0
    assert time.monotonic() - started < 10  # each far inside its 30 s timeout


def test_wait_fails_at_the_timeout_with_one_line(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-s", "app=web", url=url).code == 0
    started = time.monotonic()
    late = skyctl("wait", "svc", "web", "-n", ns, "--for=endpoints>=1", "--timeout", "1s", url=url)
    took = time.monotonic() - started
    assert late.code == 1 and late.out == ""
    assert late.err == (
        "error: timed out after 1s waiting for service/web (endpoints>=1): 0 ready endpoints\n"
    )
    assert 1.0 <= took < 10
    path = skyctl(
        "wait",
        "svc",
        "web",
        "-n",
        ns,
        "--for=jsonpath={.spec.type}=NodePort",
        "--timeout",
        "0",
        url=url,
    )
    assert path.code == 1 and "the path gives ClusterIP" in path.err, path.err
    missing = skyctl("wait", "svc", "nope", "-n", ns, "--for=endpoints>=1", url=url)
    assert missing.code == 1 and "not found" in missing.err


def test_bad_conditions_are_one_line_exit_2(url: str, ns: str) -> None:
    for args in (
        ("--for=ready",),
        ("--for=endpoints>=many",),
        ("--for=jsonpath={.spec.type",),
        ("--for=jsonpath={.spec[}=x",),
        ("--for=delete", "--timeout", "soon"),
        (),
    ):
        bad = skyctl("wait", "svc", "web", "-n", ns, *args, url=url)
        assert bad.code == 2, (args, bad.err)
        assert bad.out == "" and len(bad.err.splitlines()) == 1, (args, bad.err)
        assert bad.err.startswith("error: invalid"), bad.err
