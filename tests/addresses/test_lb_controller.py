"""examples/lb_controller.py against a real server: addresses from a pool, never twice.

The controller runs as a user runs it, in its own process; the tests write services with
the library, kill the controller with SIGKILL at awkward moments, and read the results
back from the registry (the log is the only place the controller keeps anything).
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest

from events import (
    Ingress,
    LoadBalancerStatus,
    Port,
    Service,
    ServiceStatus,
    ServiceType,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from events.codec import decode_status
from events.status import ServiceStatusSet
from events.subjects import status_subject
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.log.reader import Start, read_until_caught_up
from tests.helpers import raw_publish

CONTROLLER = Path(__file__).resolve().parents[2] / "examples" / "lb_controller.py"
POOL = "203.0.113.10-203.0.113.29"  # TEST-NET-3: 20 addresses
NS = "shop"


class Controller:
    """One run of the controller, its output in a file the test can read at any time."""

    def __init__(self, url: str, log: Path, *args: str) -> None:
        self.log = log
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(CONTROLLER), "--server", url, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def output(self) -> str:
        return self.log.read_text()

    async def ready(self) -> None:
        await until(lambda: _true("serving " in self.output()), what="controller start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        assert self.proc.returncode in (0, -signal.SIGKILL), self.output()
        assert "Traceback" not in self.output(), self.output()


async def _true(value: bool) -> bool:
    return value


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.05)


def lb(name: str, port: int = 80) -> Service:
    return Service(namespace=NS, name=name, type=ServiceType.LOAD_BALANCER, ports=(_port(port),))


def _port(port: int) -> Port:
    return Port(port=port, target_port=port)


async def external_ips(registry: Registry) -> dict[str, str | None]:
    """Each live service's external address (None: none reported)."""
    out: dict[str, str | None] = {}
    for record in await registry.list(NS):
        ingress = record.status.load_balancer.ingress if record.status else ()
        assert len(ingress) <= 1, record.status
        out[record.service.name] = ingress[0].ip if ingress else None
    return out


def in_pool(ip: str | None, first: str = "203.0.113.10", last: str = "203.0.113.29") -> bool:
    addr = ipaddress.IPv4Address(ip or "0.0.0.0")
    return ipaddress.IPv4Address(first) <= addr <= ipaddress.IPv4Address(last)


@pytest.fixture
def server(fresh_server: NatsServer) -> str:
    return fresh_server.url  # a server per test: pools are registry-wide


@pytest.fixture
async def registry(server: str) -> AsyncIterator[Registry]:
    async with await Registry.connect(server) as reg:
        yield reg


async def test_distinct_addresses_across_sigkills_while_services_are_created(
    server: str, registry: Registry, tmp_path: Path
) -> None:
    log = tmp_path / "controller.log"
    await registry.create(Service(namespace=NS, name="plain", ports=(_port(80),)))
    names = [f"lb-{i:02}" for i in range(18)]
    for name in names[:4]:  # some before it ever ran
        await registry.create(lb(name))

    controller = Controller(server, log, "--pool", POOL, "-n", NS)
    await controller.ready()

    async def create_the_rest() -> None:
        for name in names[4:]:
            await registry.create(lb(name))
            await asyncio.sleep(0.1)

    creating = asyncio.create_task(create_the_rest())
    # Kill it twice while services are still being created: once it has handed out some,
    # and again soon after its restart (with a backlog of deliveries, some acted on).
    for served in (6, 10):
        await until(partial(_count_served, registry, served), what=f"{served} served")
        controller.kill()
        controller = Controller(server, log, "--pool", POOL, "-n", NS)
    await creating
    try:
        await until(lambda: _count_served(registry, len(names)), what="every LoadBalancer served")
    finally:
        controller.stop()

    ips = await external_ips(registry)
    assert ips.pop("plain") is None  # a ClusterIP gets none
    assert set(ips) == set(names)
    assert all(in_pool(ip) for ip in ips.values()), ips
    assert len(set(ips.values())) == len(names), f"an address handed out twice: {ips}"
    # ... and none was ever written twice or over another: one status report per service.
    for name in names:
        reports = await status_reports(registry, NS, name)
        assert len(reports) == 1, (name, reports)
    assert controller.output().count("serving namespace shop") == 3


async def _count_served(registry: Registry, n: int) -> bool:
    return sum(ip is not None for ip in (await external_ips(registry)).values()) >= n


async def test_small_pool_leaves_the_rest_pending_and_reuses_freed_addresses(
    server: str, registry: Registry, tmp_path: Path
) -> None:
    controller = Controller(
        server, tmp_path / "controller.log", "--pool", "203.0.113.10/31", "-A"
    )  # two addresses
    await controller.ready()
    try:
        for name in ("a", "b", "c"):
            await registry.create(lb(name))
        await until(
            lambda: _true("shop/c stays <pending>" in controller.output()), what="c pending"
        )
        ips = await external_ips(registry)
        assert ips == {"a": "203.0.113.10", "b": "203.0.113.11", "c": None}

        # Deleting a frees its address, and the one waiting gets it.
        await registry.delete(NS, "a")
        await until(lambda: _has_ip(registry, "c"), what="c served")
        assert await external_ips(registry) == {"b": "203.0.113.11", "c": "203.0.113.10"}

        # A new one waits again; b stops being a LoadBalancer (its status goes with it),
        # and the new one gets b's address.
        await registry.create(lb("d"))
        await until(
            lambda: _true("shop/d stays <pending>" in controller.output()), what="d pending"
        )
        await registry.apply(Service(namespace=NS, name="b", ports=(_port(80),)))
        await until(lambda: _has_ip(registry, "d"), what="d served")
        assert await external_ips(registry) == {
            "b": None,
            "c": "203.0.113.10",
            "d": "203.0.113.11",
        }
    finally:
        controller.stop()
    assert "freed 203.0.113.10 (held by shop/a)" in controller.output()
    assert "freed 203.0.113.11 (held by shop/b)" in controller.output()


async def _has_ip(registry: Registry, name: str) -> bool:
    return (await external_ips(registry)).get(name) is not None


def _status(ip: str) -> ServiceStatus:
    return ServiceStatus(load_balancer=LoadBalancerStatus(ingress=(Ingress(ip=ip),)))


async def status_reports(registry: Registry, namespace: str, name: str) -> list[ServiceStatusSet]:
    """Every status report written for the service (its status subject's history)."""
    async with registry.log.read([status_subject(namespace, name)], Start("all")) as tail:
        return [decode_status(m.data) for m in await read_until_caught_up(tail)]


async def forge_status(server: str, namespace: str, name: str, ip: str, actor: str) -> None:
    """A status written by someone else than the controller (another controller user, or
    an admin by hand), with raw nats-py."""
    async with await Registry.connect(server) as registry:
        record = await registry.get(namespace, name)
    report = ServiceStatusSet(
        id=new_event_id(),
        time=utc_now(),
        actor=actor,
        namespace=namespace,
        name=name,
        uid=record.event_id,
        revision=record.seq,
        status=_status(ip),
    )
    await raw_publish(server, status_subject(namespace, name), encode(report))


async def test_pool_addresses_it_did_not_assign_are_ignored_others_left_alone(
    server: str, registry: Registry, tmp_path: Path
) -> None:
    # Before it starts: someone else gave x the pool's first address, y one outside it.
    for name in ("x", "y"):
        await registry.create(lb(name))
    await forge_status(server, NS, "x", "203.0.113.10", "mallory")
    await forge_status(server, NS, "y", "198.51.100.7", "mallory")

    controller = Controller(server, tmp_path / "controller.log", "--pool", POOL, "-n", NS)
    await controller.ready()
    try:
        await until(lambda: _owned(registry, "x"), what="x served by the controller")
        await registry.create(lb("z"))
        await until(lambda: _has_ip(registry, "z"), what="z served")
        # While it runs: someone else gives a service in a namespace it does not serve the
        # pool's next free address: not the controller's, so it holds nothing and is
        # handed out again.
        await registry.create(lb("w").model_copy(update={"namespace": "other"}))
        await forge_status(server, "other", "w", "203.0.113.12", "mallory")
        await registry.create(lb("v"))
        await until(lambda: _has_ip(registry, "v"), what="v served")
    finally:
        controller.stop()
    ips = await external_ips(registry)
    assert ips == {
        "x": "203.0.113.10",  # now the controller's own
        "y": "198.51.100.7",  # outside the pool: left alone
        "z": "203.0.113.11",
        "v": "203.0.113.12",  # other/w's was not the controller's: it holds nothing
    }
    x = await registry.get(NS, "x")
    assert x.status_report is not None and x.status_report.actor != "mallory"
    assert (await registry.get(NS, "y")).status_report.actor == "mallory"  # type: ignore[union-attr]
    assert "ignoring 203.0.113.10 on shop/x" in controller.output()


async def _owned(registry: Registry, name: str) -> bool:
    report = (await registry.get(NS, name)).status_report
    return report is not None and report.actor != "mallory"


async def test_a_service_it_cannot_read_is_left_alone(
    server: str, registry: Registry, tmp_path: Path
) -> None:
    await registry.create(lb("p"))
    await raw_publish(server, subject_for(NS, "p"), b"\xc1 not an event")  # its last event
    controller = Controller(server, tmp_path / "controller.log", "--pool", POOL, "-n", NS)
    await controller.ready()
    try:
        await registry.create(lb("q"))
        await until(lambda: _has_ip(registry, "q"), what="q served")
    finally:
        controller.stop()
    assert "shop/p left alone: " in controller.output()
    assert await external_ips(registry) == {"p": None, "q": "203.0.113.10"}


BAD_FLAGS = [
    ([], "no --pool given"),
    (["--pool", ""], 'invalid --pool ""'),
    (["--pool", "192.0.2.300"], 'invalid --pool "192.0.2.300"'),
    (["--pool", "192.0.2.20-192.0.2.10"], 'invalid --pool "192.0.2.20-192.0.2.10"'),
    (["--pool", "192.0.2.1/28"], 'invalid --pool "192.0.2.1/28"'),
    (["--pool", "2001:db8::/64"], 'invalid --pool "2001:db8::/64"'),
    (["--pool", "192.0.2.0/28", "-n", "Not_a_name"], 'invalid --namespace "Not_a_name"'),
]


def test_bad_flags_and_an_unreachable_server_are_one_line_each() -> None:
    cases = [(args, named, 2) for args, named in BAD_FLAGS]
    cases.append((["--pool", POOL], "cannot reach NATS at nats://127.0.0.1:1", 1))
    runs = [
        (
            subprocess.Popen(
                [sys.executable, str(CONTROLLER), "--server", "nats://127.0.0.1:1", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            named,
            code,
        )
        for args, named, code in cases
    ]  # all at once: each pays Python's start-up
    for proc, named, code in runs:
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (code, ""), err
        assert err.startswith(f"error: {named}"), err
        assert err.count("\n") == 1, err
