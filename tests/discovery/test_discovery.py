"""Discovery against real servers: tasks announce themselves, the server forgets the dead,
services resolve to their live endpoints. TTLs are 2 s to keep this quick."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable

import msgpack
import nats.js.errors
import pytest

from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.discovery.resolver import Resolver
from registry.errors import NoEndpoints, NotFound
from registry.jetstream.server import NatsServer
from tests.helpers import Lines, raw_nats, skyctl, start


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``check()`` holds."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def web(ns: str, name: str = "web", app: str = "web") -> Service:
    return Service(
        namespace=ns,
        name=name,
        selector={"app": app},
        ports=(Port(port=80, target_port=8080),),
        cluster="eu-1",
    )


def total(resolver: Resolver, service: str) -> int:
    known = resolver.known(service)
    return 0 if known is None else known.total


async def test_killed_tasks_expire_withdrawn_ones_go_at_once(
    url: str, ns: str, report: Callable[[str], None]
) -> None:
    """SIGKILL of an announcer: gone within TTL + 1 s from get endpoints, the Resolver and
    the watch; Ctrl-C (SIGINT) or SIGTERM: gone at once."""
    service = f"{ns}/web"
    async with await Registry.connect(url) as registry, registry.resolver() as resolver:
        await registry.create(web(ns))
        addresses = {"victim": "10.0.0.1", "polite": "10.0.0.2", "term": "10.0.0.3"}
        flags = ["-n", ns, "--labels", "app=web", "-c", "eu-1", "--ttl", "2s"]
        announcers = {
            name: start("announce", "task", name, "--address", address, *flags, url=url)
            for name, address in addresses.items()
        }
        watch = Lines(start("get", "svc", "-n", ns, "--watch", url=url))
        assert (await resolver.endpoints(service)).status == "0/0"
        await until(lambda: total(resolver, service) == 3, timeout=20)
        await watch.wait_for(lambda line: "3/3" in line)
        got = skyctl("get", "endpoints", "web", "-n", ns, url=url)
        assert got.code == 0, got.err
        assert got.lines[0].split() == ["NAME", "ENDPOINTS", "AGE"]  # kubectl's
        assert got.lines[1].split()[:2] == ["web", "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080"]
        tasks = skyctl("get", "tasks", "-n", ns, "-l", "app=web", "-o", "json", url=url)
        items = json.loads(tasks.out)["items"]
        assert {t["metadata"]["name"]: t["spec"]["address"] for t in items} == addresses
        assert {i["status"]["ttlSeconds"] for i in items} == {2}
        picked = {str(resolver.pick(service, port=80)) for _ in range(3)}
        assert picked == {f"{a}:8080" for a in addresses.values()}

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        announcers["victim"].kill()
        announcers["polite"].send_signal(signal.SIGINT)
        announcers["term"].send_signal(signal.SIGTERM)
        for name in ("polite", "term"):
            out, err = await asyncio.to_thread(announcers[name].communicate, timeout=10)
            assert announcers[name].returncode == 0, err
            assert out.splitlines()[-1] == f"task/{name} withdrawn"
        exited = loop.time()
        await until(lambda: total(resolver, service) <= 1)
        withdrawn_after = loop.time() - exited
        # At once: an expiry would take the 2 s TTL.
        assert withdrawn_after < 1.5, f"withdrawn tasks lingered {withdrawn_after:.2f} s"
        await until(lambda: total(resolver, service) == 0, timeout=5)
        expired_after = loop.time() - killed_at
        assert expired_after <= 3.0, f"killed task gone after {expired_after:.2f} s (TTL 2 s)"
        # A fresh process reads the server, which may lag the Resolver by the marker's
        # delay: a read begun later than TTL + 1 s after the kill must not show it.
        while True:
            began = loop.time()
            got = await asyncio.to_thread(skyctl, "get", "endpoints", "web", "-n", ns, url=url)
            if got.lines[1].split()[1] == "<none>":
                break
            late = began - killed_at
            assert late <= 3.0, f"still listed {late:.2f} s after the kill: {got.out}"
            await asyncio.sleep(0.1)
        killed_wall = time.monotonic() - (loop.time() - killed_at)
        watched = await watch.wait_for(lambda line: line.startswith("MODIFIED") and "0/0" in line)
        assert watched - killed_wall <= 3.0
        watch.proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(watch.proc.communicate, timeout=10)
        report(
            f"discovery: SIGKILLed announcer (TTL 2 s) gone from the Resolver {expired_after:.2f} s"
            f" and from the watch {watched - killed_wall:.2f} s after the kill; SIGINT/SIGTERM "
            f"withdrawals gone {withdrawn_after * 1000:.0f} ms after the announcers exited"
        )


async def test_ctrl_c_withdraws_an_announcer_started_in_the_background(url: str, ns: str) -> None:
    """A script's ``skyctl announce task ... &`` starts with SIGINT ignored; SIGINT must
    still withdraw the task at once rather than leave it to its TTL."""
    service = f"{ns}/web"
    async with await Registry.connect(url) as registry, registry.resolver() as resolver:
        await registry.create(web(ns))
        await resolver.endpoints(service)
        flags = ["-n", ns, "--labels", "app=web", "--ttl", "30s"]
        proc = start(
            "announce", "task", "bg", "--address", "10.0.0.9", *flags, url=url, sigint_ignored=True
        )
        await until(lambda: total(resolver, service) == 1, timeout=20)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(proc.communicate, timeout=10)
        assert proc.returncode == 0, err
        assert out.splitlines()[-1] == "task/bg withdrawn"
        await until(lambda: total(resolver, service) == 0, timeout=1.0)


async def test_one_services_endpoints_are_read_without_the_tasks_of_others(
    url: str, ns: str
) -> None:
    """The read for one service's endpoints gets from the server only the tasks carrying
    its selector's first label: 300 tasks of another service are never sent to it."""
    from events.liveness import selector_filter
    from registry.discovery.current import read_tasks

    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        announcer = await registry.announcer()
        others = [
            Task(
                namespace=ns,
                name=f"api-{i}",
                labels={"app": "api"},
                address=f"10.9.{i // 250}.{i % 250 + 1}",
            )
            for i in range(300)
        ]
        mine = [
            Task(
                namespace=ns,
                name=f"web-{i}",
                labels={"app": "web", "tier": "front"},
                address=f"10.8.0.{i + 1}",
            )
            for i in range(2)
        ]
        await announcer.announce([*others, *mine], 30)
        view = await read_tasks(registry.log, [selector_filter(ns, "app", "web")])
        # Only the subjects of the label read by (app=web), not tier=front, not app=api.
        subjects = [f"skyflow.task.{ns}.web-{i}.app.web" for i in range(2)]
        assert sorted(view.by_subject) == subjects
        endpoints = await registry.endpoints(ns, "web")
        assert [a.task for a in endpoints.addresses] == ["web-0", "web-1"]
        assert len(await registry.tasks(ns)) == 302


async def test_apply_moves_endpoints_between_services(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry, registry.resolver() as resolver:
        await registry.create(web(ns, "front", app="a"))
        await registry.create(web(ns, "back", app="b"))
        tasks = [
            Task(namespace=ns, name="a-1", labels={"app": "a"}, address="10.1.0.1"),
            Task(namespace=ns, name="b-1", labels={"app": "b"}, address="10.1.0.2"),
            Task(namespace=ns, name="b-2", labels={"app": "b"}, address="10.1.0.3", ready=False),
        ]
        async with (
            registry.announce(tasks[0], ttl=2),
            registry.announce(tasks[1], ttl=2),
            registry.announce(tasks[2], ttl=2),
        ):
            front = await resolver.endpoints(f"{ns}/front")
            assert [a.task for a in front.addresses] == ["a-1"]
            with pytest.raises(NoEndpoints, match="not resolved yet"):
                resolver.pick(f"{ns}/back")
            # front now selects what back selects: its endpoints move over.
            applied = await registry.apply(web(ns, "front", app="b"))
            assert applied.action == "configured"

            def front_tasks() -> list[str]:
                known = resolver.known(f"{ns}/front")
                return [] if known is None else [a.task for a in known.addresses]

            await until(lambda: front_tasks() == ["b-1", "b-2"], timeout=5)
            assert (await resolver.endpoints(f"{ns}/front")).status == "1/2"
            assert str(resolver.pick(f"{ns}/front", port=80)) == "10.1.0.2:8080"
            listed = {s.key[1]: s.endpoints.status for s in await registry.list_endpoints(ns)}
            assert listed == {"back": "1/2", "front": "1/2"}
            await registry.delete(ns, "front")
            await until(lambda: resolver.known(f"{ns}/front") is None, timeout=5)
            with pytest.raises(NotFound):
                await resolver.endpoints(f"{ns}/front")


async def test_the_resolver_answers_through_a_server_restart_and_catches_up(
    fresh_server: NatsServer, report: Callable[[str], None]
) -> None:
    """While the server is down the Resolver serves what it had and says how stale it is;
    within 1 s of the server's return it matches the server again.

    Catching up follows the reconnect: the client's reconnect back-off (0.25 s) and a
    re-read of the current state, about 0.25 s in all. The bound is the readers' heartbeat
    interval, so a Resolver that catches up only when a heartbeat shows something missing
    fails it (as when a re-created consumer's first deliveries, handled before the answer
    to its creation, were taken for a gap and dropped: 1.24 s)."""
    url, ns, service = fresh_server.url, "shop", "shop/web"
    async with (
        await Registry.connect(url) as tasks,
        await Registry.connect(url) as crashing,
        await Registry.connect(url) as reader,
        reader.resolver() as resolver,
    ):
        await reader.create(web(ns))
        stay = Task(namespace=ns, name="stay", labels={"app": "web"}, address="10.2.0.1")
        gone = Task(namespace=ns, name="gone", labels={"app": "web"}, address="10.2.0.2")
        async with tasks.announce(stay, ttl=10):
            # "gone" runs in another process in spirit: its renewals stop without a
            # withdrawal (a crash) while the server is down, and its TTL runs out there.
            await (await crashing.announcer()).announce([gone], ttl=2)
            assert (await resolver.endpoints(service)).total == 2
            fresh_server.kill()
            await (await crashing.announcer()).close()
            down_at = time.monotonic()
            while time.monotonic() - down_at < 3.5:
                # It keeps answering, at once, with what it had.
                endpoints = await asyncio.wait_for(resolver.endpoints(service), 0.1)
                assert endpoints.total == 2
                assert str(resolver.pick(service, port=80)).startswith("10.2.0.")
                await asyncio.sleep(0.1)
            stale = resolver.stale_for(service)
            assert stale > 2.0, stale
            fresh_server.start()
            back_at = time.monotonic()
            # The server expired "gone" while it was down; a task announced now is new.
            new = Task(namespace=ns, name="new", labels={"app": "web"}, address="10.2.0.3")
            async with tasks.announce(new, ttl=10):

                def names() -> list[str]:
                    known = resolver.known(service)
                    return [] if known is None else [a.task for a in known.addresses]

                caught_up = await until(lambda: names() == ["stay", "new"], timeout=5)
                caught_up = time.monotonic() - back_at
                one_shot = await reader.endpoints(ns, "web")
                assert [a.task for a in one_shot.addresses] == names()
                assert resolver.stale_for(service) == 0.0
    assert caught_up <= 1.0, f"the Resolver matched the server {caught_up:.2f} s after it returned"
    report(
        f"discovery: server down {back_at - down_at:.1f} s; the Resolver kept answering "
        f"(stale_for {stale:.1f} s) and matched the server {caught_up:.2f} s after it returned"
    )


async def test_a_hostile_writer_cannot_crash_readers(fresh_server: NatsServer) -> None:
    """Garbage, huge labels, wrong subjects, no TTL, and a roll-up of the whole stream,
    published around the registry: readers skip each with the reason and go on."""
    url, ns = fresh_server.url, "shop"
    async with await Registry.connect(url) as registry, registry.resolver() as resolver:
        await registry.create(web(ns))
        good = Task(namespace=ns, name="good", labels={"app": "web"}, address="10.3.0.1")
        async with registry.announce(good, ttl=2):
            assert (await resolver.endpoints(f"{ns}/web")).total == 1
            from events.stamps import utc_now
            from events.task import TaskHeartbeat, encode_task_message

            def beat(**task: object) -> bytes:
                fields = {**good.model_dump(), **task}
                heartbeat = TaskHeartbeat(instance="x", since=utc_now(), task=Task(**fields))
                return encode_task_message(heartbeat)

            # Long enough that none expires before a slow machine's `get tasks` reads it.
            ttl = {"Nats-TTL": "60"}
            huge = msgpack.packb({"type": "TaskHeartbeat", "version": 1, "task": "x" * 4500})
            hostile = {  # each on a subject of its own, so each is the subject's last
                "evil-1.app.web": (b"\xc1garbage", ttl, "not msgpack"),
                "evil-2.app.web": (huge, ttl, "more than a task message may hold"),
                "evil-3.app.web": (beat(name="other"), ttl, "shop/other stored under shop/evil-3"),
                "evil-4.app.web": (
                    beat(name="evil-4", labels={"app": "api"}),
                    ttl,
                    "lacks the label",
                ),
                "evil-5.app.web": (beat(name="evil-5"), {}, "no Nats-TTL header"),
                "evil-6.app.web": (
                    beat(name="evil-6"),
                    {"Nats-TTL": "never"},
                    "'never' is not 1 to 3600",
                ),
                "evil-7": (beat(name="evil-7"), ttl, "a task with labels stored on its unlabelled"),
                "a.b.c.d": (beat(name="evil-8"), ttl, "is not a task subject"),
            }
            async with raw_nats(url) as nc:
                js = nc.jetstream()
                for where, (data, headers, _) in hostile.items():
                    await js.publish(f"skyflow.task.{ns}.{where}", data, headers=headers)
                # (In a thread: this process renews "good" meanwhile.)
                got = await asyncio.to_thread(skyctl, "get", "tasks", "-n", ns, url=url)
                assert got.code == 0, got.err
                assert [line.split()[0] for line in got.lines] == ["NAME", "good"]
                warnings = got.err.splitlines()
                for (_, _, reason), warning in zip(hostile.values(), warnings, strict=True):
                    assert warning.startswith("warning: skipped seq") and reason in warning
                ep = await asyncio.to_thread(skyctl, "get", "endpoints", "web", "-n", ns, url=url)
                assert ep.code == 0 and ep.lines[1].split()[1] == "10.3.0.1:8080", ep.out + ep.err
                await asyncio.sleep(0.2)
                known = await resolver.endpoints(f"{ns}/web")
                assert [a.task for a in known.addresses] == ["good"]
                subject = f"skyflow.task.{ns}.evil-1.app.web"
                # A roll-up (which the server allows on any stream with delete markers)
                # would empty the liveness stream without a marker; announcers write an
                # intake that refuses it, and nothing is lost.
                before = (await js.stream_info("SKYFLOW_TASKS")).state.messages
                with pytest.raises(nats.js.errors.ServerError, match="rollup not permitted"):
                    await js.publish(subject, b"", headers={"Nats-Rollup": "all"})
                after = (await js.stream_info("SKYFLOW_TASKS")).state.messages
                assert before == after == 9
                assert [t.name for t in await registry.tasks(ns)] == ["good"]
                await until(lambda: total(resolver, f"{ns}/web") == 1, timeout=2)


async def test_tables_have_kubectls_columns_and_a_namespace_only_with_all(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        task = Task(namespace=ns, name="w-1", labels={"app": "web"}, address="10.4.0.1")
        async with registry.announce(task, ttl=30):
            got = await asyncio.to_thread(skyctl, "get", "endpoints", "web", "-n", ns, url=url)
            assert got.lines[0].split() == ["NAME", "ENDPOINTS", "AGE"]
            assert got.lines[1].split()[:2] == ["web", "10.4.0.1:8080"]
            every = await asyncio.to_thread(skyctl, "get", "endpoints", "-A", url=url)
            assert every.lines[0].split() == ["NAMESPACE", "NAME", "ENDPOINTS", "AGE"]
            assert [ns, "web", "10.4.0.1:8080"] in [line.split()[:3] for line in every.lines]
            wide = await asyncio.to_thread(skyctl, "get", "ep", "-A", "-o", "wide", url=url)
            assert wide.lines[0].split()[:3] == ["NAMESPACE", "NAME", "CLUSTER"]
            listed = await asyncio.to_thread(skyctl, "get", "tasks", "-n", ns, url=url)
            header = ["NAME", "READY", "ADDRESS", "CLUSTER", "LABELS", "HEARTBEAT"]
            assert listed.lines[0].split() == header
            assert listed.lines[1].split()[:3] == ["w-1", "true", "10.4.0.1"]
            everywhere = await asyncio.to_thread(skyctl, "get", "tasks", "-A", url=url)
            assert everywhere.lines[0].split() == ["NAMESPACE", *header]
            assert [ns, "w-1"] in [line.split()[:2] for line in everywhere.lines]
