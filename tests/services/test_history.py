"""Audit: one service's history, the registry at a past moment, and the log itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from events import Service, ServiceCreated
from registry.client import Registry
from registry.errors import InvalidInput, NotFound
from registry.jetstream.server import NatsServer
from registry.log.entry import Entry, Skipped
from registry.services.when import AtSequence, AtTime, parse_when
from tests.helpers import raw_publish, skyctl


async def test_history_shows_every_event_of_a_recreated_service(
    registry: Registry, ns: str
) -> None:
    first = await registry.create(Service(namespace=ns, name="web", type="NodePort"))
    await registry.create(Service(namespace=ns, name="other"))
    await registry.delete(ns, "web")
    await registry.create(Service(namespace=ns, name="web", cluster="eu"))
    items = await registry.history(ns, "web")
    assert [type(i.event).__name__ for i in items] == [
        "ServiceCreated",
        "ServiceDeleted",
        "ServiceCreated",
    ]
    assert items[0].seq == first.seq and items[0].seq < items[1].seq < items[2].seq
    assert items[0].service is not None and items[0].service.type.value == "NodePort"
    assert items[1].service is None
    assert items[2].service is not None and items[2].service.cluster == "eu"
    assert all(i.event is not None and "@" in i.event.actor for i in items)


async def test_history_of_a_deleted_service_and_of_none(registry: Registry, ns: str) -> None:
    await registry.create(Service(namespace=ns, name="gone"))
    await registry.delete(ns, "gone")
    assert len(await registry.history(ns, "gone")) == 2
    with pytest.raises(NotFound):
        await registry.history(ns, "never")


def test_history_cli(url: str, ns: str) -> None:
    skyctl("create", "service", "myService", "-n", ns, "-p", "80:8080", url=url)
    skyctl("delete", "service", "myService", "-n", ns, url=url)
    skyctl("create", "service", "myService", "-n", ns, "-p", "81", url=url)
    table = skyctl("history", "service", "myService", "-n", ns, url=url)
    assert table.code == 0, table.err
    assert table.lines[0].split() == [
        "SEQ",
        "STORED",
        "ACTOR",
        "PROOF",  # whether the actor is proven
        "EVENT",
        "TYPE",
        "SELECTOR",
        "PORTS",
        "CLUSTER",
        "CHANGES",  # what an update changed
    ]
    assert [line.split()[4] for line in table.lines[1:]] == [
        "ServiceCreated",
        "ServiceDeleted",
        "ServiceCreated",
    ]
    assert "<deleted>" in table.lines[2]
    items = json.loads(skyctl("history", "svc", "myService", "-n", ns, "-o", "json", url=url).out)
    assert [i["event"]["type"] for i in items] == [
        "ServiceCreated",
        "ServiceDeleted",
        "ServiceCreated",
    ]
    assert items[1]["service"] is None
    assert items[2]["service"]["ports"] == [
        {
            "port": 81,
            "targetPort": 81,
            "protocol": "TCP",
            "name": None,
            "nodePort": None,
        }  # a ClusterIP's
    ]
    missing = skyctl("history", "service", "nope", "-n", ns, url=url)
    assert missing.code == 1 and "not found" in missing.err


def test_parse_when() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_when("1234", now) == AtSequence(1234)
    assert parse_when("90m", now) == AtTime(now - timedelta(minutes=90))
    assert parse_when("1h30m", now) == AtTime(now - timedelta(minutes=90))
    assert parse_when("2d", now) == AtTime(now - timedelta(days=2))
    assert parse_when("2026-11-25T10:00:00Z", now) == AtTime(datetime(2026, 11, 25, 10, tzinfo=UTC))
    assert parse_when("2026-11-25T11:00:00+01:00", now) == AtTime(
        datetime(2026, 11, 25, 10, tzinfo=UTC)
    )
    for bad, reason in [
        ("0", "start at 1"),
        ("yesterday", "expected a stream sequence"),
        ("2026-11-25T10:00:00", "UTC offset"),
        ("5x", "expected"),
    ]:
        with pytest.raises(InvalidInput, match=reason):
            parse_when(bad, now)


async def test_state_at_sequence_and_time(registry: Registry, ns: str) -> None:
    a = await registry.create(Service(namespace=ns, name="a"))
    b = await registry.create(Service(namespace=ns, name="b"))
    await asyncio.sleep(0.05)
    between = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await registry.delete(ns, "a")
    c = await registry.create(Service(namespace=ns, name="c"))

    def names(state: object) -> list[str]:
        return [r.service.name for r in state.projection.select()]  # type: ignore[attr-defined]

    assert names(await registry.at(AtSequence(a.seq), ns)) == ["a"]
    assert names(await registry.at(AtSequence(b.seq), ns)) == ["a", "b"]
    assert names(await registry.at(AtTime(between), ns)) == ["a", "b"]
    assert names(await registry.at(AtSequence(c.seq), ns)) == ["b", "c"]
    assert names(await registry.at(AtSequence(b.seq), ns, "a")) == ["a"]
    past = await registry.at(AtSequence(b.seq), ns)
    assert past.seq == b.seq and past.moment is not None
    with pytest.raises(InvalidInput, match="the log ends at sequence"):
        await registry.at(AtSequence(10**9))


def test_get_at_cli(url: str, ns: str) -> None:
    skyctl("create", "svc", "old", "-n", ns, url=url)
    seq = json.loads(skyctl("get", "svc", "old", "-n", ns, "-o", "json", url=url).out)["metadata"][
        "resourceVersion"
    ]
    skyctl("delete", "svc", "old", "-n", ns, url=url)
    now = skyctl("get", "svc", "-n", ns, url=url)
    assert now.out == "" and "No resources found" in now.err
    then = skyctl("get", "svc", "-n", ns, "--at", seq, url=url)
    assert [line.split()[0] for line in then.lines[1:]] == ["old"]
    one = skyctl("get", "svc", "old", "-n", ns, "--at", seq, "-o", "json", url=url)
    assert json.loads(one.out)["metadata"]["name"] == "old"
    ago = skyctl("get", "svc", "-n", ns, "--at", "1d", url=url)
    assert ago.code == 0 and ago.out == ""
    bad = skyctl("get", "svc", "-n", ns, "--at", "last tuesday", url=url)
    assert bad.code == 2 and bad.err.startswith('error: invalid time "last tuesday"')
    both = skyctl("get", "svc", "-n", ns, "--at", seq, "--watch", url=url)
    assert both.code == 2


def test_events_cli(url: str, ns: str) -> None:
    skyctl("create", "svc", "e1", "-n", ns, "-p", "80", url=url)
    skyctl("create", "svc", "e2", "-n", ns + "x", url=url)
    skyctl("delete", "svc", "e1", "-n", ns, url=url)
    table = skyctl("events", "-n", ns, url=url)
    assert table.lines[0].split() == [
        "SEQ",
        "STORED",
        "ACTOR",
        "PROOF",
        "EVENT",
        "NAMESPACE",
        "NAME",
        "DETAILS",
    ]
    assert [line.split()[4:7] for line in table.lines[1:]] == [
        ["ServiceCreated", ns, "e1"],
        ["ServiceDeleted", ns, "e1"],
    ]
    lines = [json.loads(line) for line in skyctl("events", "-A", "-o", "json", url=url).lines]
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and len(seqs) >= 3
    mine = [line for line in lines if line["subject"].split(".")[2] in (ns, ns + "x")]
    assert [line["event"]["type"] for line in mine] == [
        "ServiceCreated",
        "ServiceCreated",
        "ServiceDeleted",
    ]
    since = skyctl("events", "-n", ns, "--since", str(mine[2]["seq"]), "-o", "json", url=url)
    assert [json.loads(line)["event"]["type"] for line in since.lines] == ["ServiceDeleted"]
    assert skyctl("events", "-n", ns, "--since", "1h", url=url).lines == table.lines
    assert skyctl("events", "-n", ns, "-o", "yaml", url=url).code == 2


def test_events_follow(url: str, ns: str) -> None:
    """-f follows from now, like `kubectl events -w`: what was there before the
    follower started is not printed, what comes after is."""
    skyctl("create", "svc", "before", "-n", ns, url=url)
    env = {**os.environ, "NATS_URL": url}
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli", "events", "-n", ns, "-f", "-o", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    stop = threading.Event()

    def keep_creating() -> None:  # until the follower has surely started
        for i in range(40):
            if stop.is_set():
                return
            skyctl("create", "svc", f"live-{i}", "-n", ns, url=url)
            time.sleep(0.5)

    writer = threading.Thread(target=keep_creating)
    writer.start()
    event = json.loads(follower.stdout.readline())
    stop.set()
    writer.join()
    assert event["event"]["service"]["name"].startswith("live-")
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=10)
    assert follower.returncode == 0 and err == ""


async def test_events_api_reports_unreadable_messages(fresh_server: NatsServer) -> None:
    async with await Registry.connect(fresh_server.url) as registry:
        created = await registry.create(Service(name="x"))
        await raw_publish(fresh_server.url, "skyflow.svc.default.x", b"\xc1 not msgpack")
        records = [r async for r in registry.events("default")]
    # (created.seq + 1 is its cluster IP's record: on its own subject, not a service event)
    assert [r.seq for r in records] == [created.seq, created.seq + 2]
    first, second = records[0].entry, records[1].entry
    assert isinstance(first, Entry) and isinstance(first.event, ServiceCreated)
    assert isinstance(second, Skipped) and "not msgpack" in second.reason
