"""Zones for the DNS tests without a server: tasks, services and zones built in memory."""

from __future__ import annotations

from datetime import UTC, datetime

from events import Port, Service
from registry.discovery.endpoints import endpoints_for
from registry.discovery.tasks import LiveTask
from registry.dns.zone import Zone

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def live(
    name: str,
    address: str,
    *,
    ready: bool = True,
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
) -> LiveTask:
    return LiveTask(
        namespace,
        name,
        labels if labels is not None else {"app": "web"},
        address,
        "eu-1",
        ready,
        "i1",
        NOW,
        15,
        1,
        0,
    )


def service(
    name: str = "web",
    namespace: str = "shop",
    ports: tuple[Port, ...] = (Port(port=80, target_port=8080),),
    selector: dict[str, str] | None = None,
) -> Service:
    return Service(
        namespace=namespace,
        name=name,
        selector=selector if selector is not None else {"app": "web"},
        ports=ports,
    )


def zone_with(services: list[Service], tasks: list[LiveTask], cluster_ips: bool = False) -> Zone:
    zone = Zone("skyflow.", cluster_ips=cluster_ips)
    vips = {(s.namespace, s.name): s.cluster_ip for s in services if s.cluster_ip}
    zone.replace([endpoints_for(s, tasks) for s in services], tasks, vips)
    return zone


def big_zone(count: int) -> Zone:
    tasks = [live(f"web-{i}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(count)]
    return zone_with([service()], tasks)
