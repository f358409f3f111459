"""Status (a load balancer's external IP) is the controller role's alone, on subjects of
its own, against nats-server-auth.conf: a writer cannot set its own load balancer's
address (nor another team's), and the controller writes nothing but status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client as NatsClient

from events import (
    Ingress,
    LoadBalancerStatus,
    Port,
    Service,
    ServiceStatus,
    ServiceStatusChanged,
    ServiceType,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from events.status import ServiceStatusSet
from events.subjects import status_subject
from registry.client import Registry
from registry.errors import PermissionDenied
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server

IP = "203.0.113.7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("status")) as running:
        init = skyctl(
            "init", "--user", "admin", "--password", PASSWORDS["admin"], *INIT_TEAMS,
            url=running.url,
        )  # fmt: skip
        assert init.code == 0, init.err
        yield running


def credentials(user: str) -> Credentials:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return Credentials(user=user, password=PASSWORDS[user], inbox_prefix=inbox)


@pytest.fixture
async def writer(server: NatsServer) -> AsyncIterator[Registry]:
    async with await Registry.connect(server.url, credentials=credentials("shop-writer")) as reg:
        yield reg


async def raw(server: NatsServer, user: str, errors: list[str]) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        server.url,
        user=user,
        password=PASSWORDS[user],
        inbox_prefix=f"_INBOX_{user}",
        error_cb=on_error,
    )


def status(ip: str = IP) -> ServiceStatus:
    return ServiceStatus(load_balancer=LoadBalancerStatus(ingress=(Ingress(ip=ip),)))


def lb(namespace: str, name: str) -> Service:
    return Service(
        namespace=namespace,
        name=name,
        type=ServiceType.LOAD_BALANCER,
        ports=(Port(port=80, target_port=80),),
    )


async def test_a_writer_cannot_write_status_on_any_status_subject(
    server: NatsServer, writer: Registry
) -> None:
    web = await writer.create(lb("shop", "web"))
    with pytest.raises(PermissionDenied):
        await writer.set_status("shop", "web", status(), expected_revision=web.seq)
    errors: list[str] = []
    nc = await raw(server, "shop-writer", errors)
    try:
        report = ServiceStatusSet(
            id=new_event_id(),
            time=utc_now(),
            actor="shop-writer",
            namespace="shop",
            name="web",
            uid=web.event_id,
            revision=web.seq,
            status=status(),
        )
        for subject in (status_subject("shop", "web"), status_subject("other", "api")):
            await nc.publish(subject, encode(report))
        await nc.flush()
        await asyncio.sleep(0.2)
    finally:
        await nc.close()
    for subject in (status_subject("shop", "web"), status_subject("other", "api")):
        assert any(f'publish to "{subject}"' in e.lower() for e in errors), errors
    assert (await writer.get("shop", "web")).status is None


async def test_status_a_writer_puts_in_its_own_service_events_is_not_its_status(
    server: NatsServer, writer: Registry
) -> None:
    """The server lets a writer publish any event on its own service subjects; a status
    inside one is history, never the service's status."""
    shop = await writer.create(lb("shop", "self"))
    forged = ServiceStatusChanged(
        id=new_event_id(),
        time=utc_now(),
        actor="shop-writer",
        prev=None,
        service=shop.service,
        created=shop.origin,
        status=status(),
    )
    errors: list[str] = []
    nc = await raw(server, "shop-writer", errors)
    try:
        ack = await nc.jetstream().publish(subject_for("shop", "self"), encode(forged), timeout=5)
    finally:
        await nc.close()
    assert ack.seq > shop.seq  # stored: it is the writer's own subject
    assert (await writer.get("shop", "self")).status is None
    listed = skyctl(
        "get", "svc", "self", "-n", "shop", "--user", "admin", "--password", PASSWORDS["admin"],
        url=server.url,
    )  # fmt: skip
    assert IP not in listed.out and "<pending>" in listed.out, listed


async def test_the_controller_writes_status_and_nothing_else(
    server: NatsServer, writer: Registry
) -> None:
    api = await writer.create(lb("shop", "api"))
    async with await Registry.connect(server.url, credentials=credentials("controller")) as ctl:
        after = await ctl.set_status("shop", "api", status(), expected_revision=api.seq)
        assert after.status == status()
        with pytest.raises(PermissionDenied):
            await ctl.create(Service(namespace="shop", name="nope"))
    seen = await writer.get("shop", "api")
    assert seen.status == status() and seen.status_report is not None
    assert seen.status_report.actor == "controller"
    errors: list[str] = []
    nc = await raw(server, "controller", errors)
    try:
        for subject in ("skyflow.addr.ip.10-96-0-9", "skyflow.quota.shop", "skyflow.task.shop.x"):
            await nc.publish(subject, b"\x80")
        await nc.flush()
        await asyncio.sleep(0.2)
    finally:
        await nc.close()
    for subject in ("skyflow.addr.ip.10-96-0-9", "skyflow.quota.shop", "skyflow.task.shop.x"):
        assert any(f'publish to "{subject}"' in e.lower() for e in errors), (subject, errors)
