"""``get tasks`` and ``get endpoints`` printed and watched as ``get service`` is: JSONPath,
custom columns, names, ``--sort-by``, ``--no-headers``, ``-l``; ``-w`` in kubectl's
shapes; and ``get service -w`` in every format showing endpoints as they change."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.tasks import _changed
from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.discovery.tasks import LiveTask
from tests.helpers import Lines, Result, skyctl, start

WAIT = 30.0  # seconds a watch gets to print a line (a loaded 2-core machine)


def service(ns: str, name: str, app: str, port: int, labels: dict[str, str]) -> Service:
    return Service(
        namespace=ns,
        name=name,
        selector={"app": app},
        ports=(Port(port=port, target_port=port + 8000),),
        labels=labels,
    )


def task(ns: str, name: str, address: str, **labels: str) -> Task:
    return Task(namespace=ns, name=name, labels=labels, address=address)


@contextlib.asynccontextmanager
async def announced(registry: Registry, *tasks: Task) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for one in tasks:
            await stack.enter_async_context(registry.announce(one, ttl=60))
        yield


@pytest.fixture
async def fleet(url: str, ns: str) -> AsyncIterator[str]:
    """Two services (web labelled tier=front, db unlabelled) and three live tasks whose
    names, addresses and registry order all sort differently: w-2 10.6.0.12, w-10
    10.6.0.3 (web's), d-1 10.6.0.7 (db's)."""
    async with await Registry.connect(url) as registry:
        await registry.create(service(ns, "web", "web", 80, {"tier": "front"}))
        await registry.create(service(ns, "db", "db", 5432, {}))
        tasks = (
            task(ns, "w-2", "10.6.0.12", app="web", tier="front"),
            task(ns, "w-10", "10.6.0.3", app="web"),
            task(ns, "d-1", "10.6.0.7", app="db"),
        )
        async with announced(registry, *tasks):
            yield ns


async def run(*args: str, url: str) -> Result:
    return await asyncio.to_thread(skyctl, *args, url=url)


async def out(*args: str, url: str) -> str:
    result = await run(*args, url=url)
    assert result.code == 0, (args, result.err)
    return result.out


async def next_line(lines: Lines) -> str:
    return (await asyncio.to_thread(lines.next, WAIT)).rstrip("\n")


async def stop(lines: Lines) -> None:
    """Ctrl-C: a watch ends with exit 0 and nothing on stderr."""
    lines.proc.send_signal(signal.SIGINT)
    _, err = await asyncio.to_thread(lines.proc.communicate, timeout=WAIT)
    assert lines.proc.returncode == 0 and err == "", err


async def test_tasks_print_through_paths_columns_names_and_sort(
    url: str, fleet: str, tmp_path: Path
) -> None:
    ns = fleet
    get = ("get", "tasks", "-n", ns)
    assert await out(*get, "-o", "jsonpath={.items[*].metadata.name}", url=url) == "d-1 w-10 w-2"
    names = await out(*get, "-o", "name", url=url)
    assert names.splitlines() == ["task/d-1", "task/w-10", "task/w-2"]
    by_name = await out(*get, "-o", "name", "--sort-by", ".metadata.name", url=url)
    assert by_name.splitlines() == ["task/d-1", "task/w-2", "task/w-10"]  # naturally
    template = '{range .items[*]}{.metadata.name}{"\\t"}{.spec.address}{"\\n"}{end}'
    by_address = await out(*get, "-o", f"jsonpath={template}", "--sort-by={.spec.address}", url=url)
    assert by_address == "w-10\t10.6.0.3\nd-1\t10.6.0.7\nw-2\t10.6.0.12\n"
    columns = "NAME:.metadata.name,ADDRESS:.spec.address,TIER:.metadata.labels.tier"
    table = await out(*get, "-o", f"custom-columns={columns}", "-l", "app=web", url=url)
    assert [line.split() for line in table.splitlines()] == [
        ["NAME", "ADDRESS", "TIER"],
        ["w-10", "10.6.0.3", "<none>"],
        ["w-2", "10.6.0.12", "front"],
    ]
    file = tmp_path / "columns.txt"
    file.write_text("NAME  READY\n.metadata.name  {.status.ready}\n")
    bare = await out(*get, "-o", f"custom-columns-file={file}", "--no-headers", url=url)
    assert [line.split() for line in bare.splitlines()] == [
        ["d-1", "true"],
        ["w-10", "true"],
        ["w-2", "true"],
    ]
    plain = await out(*get, "--no-headers", "-l", "tier", url=url)
    assert [line.split()[:3] for line in plain.splitlines()] == [["w-2", "true", "10.6.0.12"]]
    one = await out("get", "task", "w-2", "-n", ns, "-o", "jsonpath={.spec.address}", url=url)
    assert one == "10.6.0.12"
    assert await out("get", "task", "w-2", "-n", ns, "-o", "name", url=url) == "task/w-2\n"
    file = tmp_path / "names.tmpl"
    file.write_text('{range .items[*]}{.metadata.name}{","}{end}')
    assert await out(*get, "-o", f"jsonpath-file={file}", "-l", "app=db", url=url) == "d-1,"


async def test_endpoints_print_through_paths_columns_names_and_sort(url: str, fleet: str) -> None:
    ns = fleet
    get = ("get", "endpoints", "-n", ns)
    names = await out(*get, "-o", "name", url=url)
    assert names.splitlines() == ["endpoints/db", "endpoints/web"]
    template = '{range .items[*]}{.metadata.name}={.subsets[*].addresses[*].ip}{"\\n"}{end}'
    assert await out(*get, "-o", f"jsonpath={template}", url=url) == (
        "db=10.6.0.7\nweb=10.6.0.3 10.6.0.12\n"
    )
    columns = "NAME:.metadata.name,IPS:.subsets[*].addresses[*].ip,PORT:.subsets[0].ports[0].port"
    table = await out(*get, "-o", f"custom-columns={columns}", url=url)
    assert [line.split() for line in table.splitlines()] == [
        ["NAME", "IPS", "PORT"],
        ["db", "10.6.0.7", "13432"],
        ["web", "10.6.0.3,10.6.0.12", "8080"],
    ]
    first_ip = "{.subsets[0].addresses[0].ip}"
    by_ip = await out(*get, "-o", "name", "--sort-by", first_ip, url=url)
    assert by_ip.splitlines() == ["endpoints/web", "endpoints/db"]  # 10.6.0.3 < 10.6.0.7
    bare = await out(*get, "--no-headers", "--sort-by", first_ip, url=url)
    assert [line.split()[:2] for line in bare.splitlines()] == [
        ["web", "10.6.0.3:8080,10.6.0.12:8080"],
        ["db", "10.6.0.7:13432"],
    ]
    # Endpoints carry their service's labels, so -l picks them as kubectl's does.
    assert await out(*get, "-o", "name", "-l", "tier=front", url=url) == "endpoints/web\n"
    one = json.loads(await out("get", "ep", "web", "-n", ns, "-o", "json", url=url))
    assert one["kind"] == "Endpoints" and one["metadata"]["labels"] == {"tier": "front"}
    assert await out("get", "ep", "db", "-n", ns, "-o", "jsonpath={.metadata.name}", url=url) == (
        "db"
    )


BAD = [
    (["get", "tasks", "-o", "jsonpath={.items["], "invalid jsonpath"),
    (["get", "tasks", "--sort-by", ".items["], 'invalid jsonpath ".items["'),
    (["get", "tasks", "-o", "custom-columns=NAME"], "invalid custom-columns"),
    (["get", "tasks", "x", "-w", "-A"], 'invalid --all-namespaces "x"'),
    (["get", "tasks", "-l", "a in b"], "invalid label selector"),
    (["get", "endpoints", "-o", "jsonpath={range .items[*]}"], "is not closed by {end}"),
    (["get", "endpoints", "--sort-by", "{.a}{.b}"], "expected a path"),
    (["get", "endpoints", "web", "-w", "-A"], 'invalid name "web"'),
    (["get", "endpoints", "web", "-l", "app=web"], 'invalid label selector "app=web"'),
    (["get", "endpoints", "-o", "custom-columns-file=/nonexistent/c"], "/nonexistent/c"),
    (["get", "endpoints", "-o", "go-template={{.x}}"], "'go-template={{.x}}' is not one of"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_are_one_line_before_the_server_is_asked(args: list[str], message: str) -> None:
    # An unreachable server would be exit 3: exit 2 proves nothing was asked.
    result = skyctl(*args, url="nats://127.0.0.1:1")
    assert result.code == 2, result.err
    assert result.out == "" and message in result.err, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


async def test_sort_by_a_path_no_task_or_endpoints_has(url: str, fleet: str) -> None:
    for noun in ("tasks", "endpoints"):
        result = await run("get", noun, "-n", fleet, "--sort-by", ".spec.nothing", url=url)
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert 'invalid --sort-by ".spec.nothing"' in result.err


async def test_get_tasks_watch_adds_and_deletes_as_tasks_come_and_go(url: str, ns: str) -> None:
    async with (
        await Registry.connect(url) as registry,
        registry.announce(task(ns, "t-1", "10.6.1.1", app="web"), ttl=60),
    ):
        table = Lines(start("get", "tasks", "-w", "-n", ns, url=url))
        as_json = Lines(start("get", "tasks", "-w", "-n", ns, "-o", "json", url=url))
        names = Lines(start("get", "tasks", "-w", "-n", ns, "-o", "name", "-l", "app=web", url=url))
        assert (await next_line(table)).split()[:4] == ["EVENT", "NAME", "READY", "ADDRESS"]
        assert (await next_line(table)).split()[:4] == ["ADDED", "t-1", "true", "10.6.1.1"]
        first = json.loads(await next_line(as_json))
        assert first["type"] == "ADDED" and first["object"]["kind"] == "Task"
        assert first["object"]["spec"]["address"] == "10.6.1.1"
        assert await next_line(names) == "ADDED\ttask/t-1"
        # A task the selector does not pick prints nothing there: the next line of the
        # selected watch is the one after it.
        async with registry.announce(task(ns, "d-1", "10.6.1.9", app="db"), ttl=60):
            assert (await next_line(table)).split()[:2] == ["ADDED", "d-1"]
            async with registry.announce(task(ns, "t-2", "10.6.1.2", app="web"), ttl=60):
                assert (await next_line(table)).split()[:4] == [
                    "ADDED",
                    "t-2",
                    "true",
                    "10.6.1.2",
                ]
                assert await next_line(names) == "ADDED\ttask/t-2"
            # Withdrawn: gone at once, not at its TTL.
            assert (await next_line(table)).split()[:2] == ["DELETED", "t-2"]
            assert await next_line(names) == "DELETED\ttask/t-2"
        events = [json.loads(await next_line(as_json)) for _ in range(3)]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "d-1"),
            ("ADDED", "t-2"),
            ("DELETED", "t-2"),
        ]
        assert (await next_line(table)).split()[:2] == ["DELETED", "d-1"]
        for lines in (table, as_json, names):
            await stop(lines)


async def test_get_endpoints_watch_modifies_a_service_when_a_task_joins(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(service(ns, "web", "web", 80, {}))
        table = Lines(start("get", "endpoints", "-w", "-n", ns, url=url))
        as_json = Lines(start("get", "ep", "-w", "-n", ns, "-o", "json", url=url))
        names = Lines(start("get", "ep", "web", "-w", "-n", ns, "-o", "name", url=url))
        assert (await next_line(table)).split() == ["EVENT", "NAME", "ENDPOINTS", "AGE"]
        assert (await next_line(table)).split()[:3] == ["ADDED", "web", "<none>"]
        added = json.loads(await next_line(as_json))
        assert added["type"] == "ADDED" and added["object"]["subsets"] == []
        assert await next_line(names) == "ADDED\tendpoints/web"
        async with registry.announce(task(ns, "w-1", "10.6.2.1", app="web"), ttl=60):
            assert (await next_line(table)).split()[:3] == ["MODIFIED", "web", "10.6.2.1:8080"]
            modified = json.loads(await next_line(as_json))
            assert modified["type"] == "MODIFIED"
            [subset] = modified["object"]["subsets"]
            assert [a["ip"] for a in subset["addresses"]] == ["10.6.2.1"]
            assert await next_line(names) == "MODIFIED\tendpoints/web"
        assert (await next_line(table)).split()[:3] == ["MODIFIED", "web", "<none>"]
        await registry.delete(ns, "web")
        assert (await next_line(table)).split()[:2] == ["DELETED", "web"]
        for lines in (table, as_json, names):
            await stop(lines)


async def test_get_service_watch_in_json_carries_the_endpoints_as_they_change(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(service(ns, "web", "web", 80, {}))
        as_json = Lines(start("get", "svc", "-w", "-n", ns, "-o", "json", url=url))
        template = (
            '{.type} {.object.status.endpoints.ready}/{.object.status.endpoints.total}{"\\n"}'
        )
        counts = Lines(
            start("get", "svc", "web", "-w", "-n", ns, "-o", f"jsonpath={template}", url=url)
        )
        added = json.loads(await next_line(as_json))
        assert added["type"] == "ADDED"
        assert added["object"]["status"]["endpoints"] == {"ready": 0, "total": 0, "subsets": []}
        assert await next_line(counts) == "ADDED 0/0"
        async with registry.announce(task(ns, "w-1", "10.6.3.1", app="web"), ttl=60):
            modified = json.loads(await next_line(as_json))
            assert modified["type"] == "MODIFIED"
            endpoints = modified["object"]["status"]["endpoints"]
            assert endpoints["ready"] == 1
            assert endpoints["subsets"][0]["addresses"] == [
                {"ip": "10.6.3.1", "targetRef": {"kind": "Task", "name": "w-1"}}
            ]
            assert await next_line(counts) == "MODIFIED 1/1"
        assert await next_line(counts) == "MODIFIED 0/0"
        for lines in (as_json, counts):
            await stop(lines)


async def test_a_watch_of_one_service_without_a_selector_prints_it(url: str, ns: str) -> None:
    """Such a service picks no tasks; its watch once waited for ever for tasks it never
    reads, and printed nothing."""
    async with await Registry.connect(url) as registry:
        await registry.create(Service(namespace=ns, name="plain"))
        watch = Lines(start("get", "svc", "plain", "-w", "-n", ns, url=url))
        assert (await next_line(watch)).split()[:2] == ["EVENT", "NAME"]
        assert (await next_line(watch)).split()[:2] == ["ADDED", "plain"]
        await stop(watch)


def test_a_renewed_heartbeat_is_no_change_to_a_watcher() -> None:
    """A fresh read of the liveness stream reports every renewal; ``get tasks -w`` prints
    MODIFIED only when something of the task but its heartbeat changed."""
    before = LiveTask(
        namespace="ns",
        name="t",
        labels={"app": "web"},
        address="10.0.0.1",
        cluster=None,
        ready=True,
        instance="i",
        since=datetime.now(UTC),
        ttl=30,
        seq=5,
        heard_ns=1,
    )
    renewed = dataclasses.replace(before, seq=9, heard_ns=2)
    assert not _changed(before, renewed)
    assert _changed(before, dataclasses.replace(renewed, ready=False))
    assert _changed(before, dataclasses.replace(renewed, labels={"app": "api"}))
