"""``skyctl describe service [NAME...]``: services in full, and what
happened to them lately."""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import NamespaceOpt, label_selector_option
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import (
    UNSIGNED,
    Table,
    endpoints_cell,
    event_changes,
    human_age,
    proof_cell,
    record_proof,
    short_time,
    signing_in_use,
    status_after,
)
from cli.targets import service_targets
from cli.terminal import safe
from cli.verbs import register, verb_app

if TYPE_CHECKING:
    from events import Port, Service, ServiceStatus
    from events.membership import Transition
    from registry.client import Registry
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.tasks import LiveTask
    from registry.services.history import HistoryItem
    from registry.services.projection import ServiceRecord
    from registry.services.proof import Trust

__all__ = ["describe_app"]

describe_app = verb_app("Show details of a resource.")
_Described = tuple["ServiceRecord", "list[HistoryItem]", "Endpoints", "list[Transition] | None"]
RECENT = 10  # events shown, newest last, as kubectl shows a resource's events


@connection_options
def describe_service(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME|TYPE/NAME]...",
            help="Services to describe; every service in the namespace if omitted.",
            show_default=False,
        ),
    ] = None,
    namespace: NamespaceOpt = "default",
    selector: Annotated[str | None, label_selector_option("describe the services")] = None,
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Every field of a service, its labels, revision, who created it and when, its
    addresses, and its last 10 events (age, actor, what changed); without a name, every
    service in the namespace (or those -l picks), one after another.

    Example:  skyctl describe service web -n shop
    """
    namespace = parse_name(namespace, "namespace")
    targets = service_targets(names or [], selector, False, required=False)
    trust = load_trust(trust_file)

    async def read() -> list[_Described]:
        async with await conn.open() as registry:
            if targets.every:
                records = await targets.records(registry, namespace)
            else:
                records = [await registry.get(namespace, name) for name in targets.names]
            described: list[_Described] = []
            for record in records:
                name = record.service.name
                items = await registry.history(namespace, name)
                endpoints = await registry.endpoints(namespace, name, record=record)
                transitions = await _recent_transitions(registry, record)
                described.append((record, items, endpoints, transitions))
            return described

    described = run_command(read())
    if not described:
        print(f"No resources found in {namespace} namespace.", file=sys.stderr)
    for index, (record, items, endpoints, transitions) in enumerate(described):
        if index:
            print()  # kubectl's blank line between two
        _place(record, items)
        print(render(record, items, trust, endpoints))
        print(_membership(transitions))


async def _recent_transitions(registry: Registry, record: ServiceRecord) -> list[Transition] | None:
    """The last transitions of the tasks the service selects, over the last day (None:
    nothing records membership)."""
    from registry.discovery.served import recent_transitions
    from registry.jetstream.membership import NotRecorded

    service = record.service
    if not service.selector:
        return []
    since = datetime.now(UTC) - timedelta(days=1)
    try:
        return await recent_transitions(
            registry.log, service.namespace, service.selector, since=since, limit=RECENT
        )
    except NotRecorded:
        return None


def _membership(transitions: list[Transition] | None) -> str:
    """``Membership:`` and the recent transitions, newest last, as ``Events:``."""
    from cli.transitions import TRANSITION_COLUMNS, transition_row

    if transitions is None:
        return "Membership:    <not recorded: run skyctl record>"
    if not transitions:
        return "Membership:    <none in the last day>"
    rows = [transition_row(t) for t in reversed(transitions)]
    table = Table(TRANSITION_COLUMNS, rows)
    return "\n".join(["Membership:", *("  " + line for line in table.render(rows).splitlines())])


def _place(record: ServiceRecord, items: list[HistoryItem]) -> None:
    """Where the record's event stands in its chain, from the history read beside it."""
    from registry.log.stored import chain_hash

    previous = [i.message for i in items if i.message is not None and i.seq < record.seq]
    if previous:
        record.previous = (previous[-1].seq, chain_hash(previous[-1].data))
    elif any(i.seq == record.seq for i in items):
        record.previous = (0, None)


def render(
    record: ServiceRecord,
    items: list[HistoryItem],
    trust: Trust | None,
    endpoints: Endpoints | None = None,
) -> str:
    now = datetime.now(UTC)
    service = record.service
    labels = [f"{k}={v}" for k, v in sorted(service.labels.items())] or ["<none>"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(service.selector.items())) or "<none>"
    proof = record_proof(record, trust)
    shown = proof_cell(proof, signing_in_use(trust, [proof]))
    changed_by = record.last_actor if shown == UNSIGNED else f"{record.last_actor} ({shown})"
    fields: list[tuple[str, str]] = [
        ("Name:", service.name),
        ("Namespace:", service.namespace),
        ("Labels:", labels[0]),
        *[("", label) for label in labels[1:]],
        ("UID:", record.event_id),
        ("Revision:", str(record.seq)),
        ("Created:", f"{short_time(record.created)} ({human_age(record.created, now)} ago)"),
        ("Created By:", record.actor),
        ("Last Changed By:", changed_by),
        ("Type:", service.type.value),
        ("Selector:", selector),
        ("Cluster:", service.cluster or "<none>"),
        *_addresses(service, record.status),
    ]
    for port in service.ports or ():
        # kubectl's lines: a port's name (``<unset>`` if it has none) before it.
        protocol = port.protocol.value
        name = port.name or "<unset>"
        fields.append(("Port:", f"{name}  {port.port}/{protocol}"))
        fields.append(("TargetPort:", f"{port.target_port}/{protocol}"))
        if port.node_port is not None:
            fields.append(("NodePort:", f"{name}  {port.node_port}/{protocol}"))
        if endpoints is not None:
            # kubectl's line: the ready endpoints at this port's target port.
            fields.append(("Endpoints:", endpoints_cell(_at_port(endpoints, port))))
    if not service.ports:
        fields.append(("Port:", "<none>"))
        if endpoints is not None:
            fields.append(("Endpoints:", endpoints_cell(endpoints)))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label.ljust(width)}{safe(value)}" for label, value in fields]
    lines.append("Events:")
    rows = [_event_row(item, before, now) for item, before in _recent(items)]
    table = Table(("AGE", "SEQ", "ACTOR", "EVENT", "CHANGES"), rows)
    lines += ["  " + line for line in table.render(rows).splitlines()]
    return "\n".join(lines)


def _at_port(endpoints: Endpoints, port: Port) -> Endpoints:
    """The endpoints as one port's: its target port only."""
    return dataclasses.replace(endpoints, ports=(port,))


def _addresses(service: Service, status: ServiceStatus | None) -> list[tuple[str, str]]:
    """kubectl's IP lines: the cluster IP (``None``: headless; ``<none>``: it has none, an
    ExternalName or a service from before addresses) and a LoadBalancer's ingress."""
    from events import ServiceType

    fields = [("IP:", service.cluster_ip or "<none>")]
    if service.cluster_ip is not None:
        fields.append(("IPs:", service.cluster_ip))
    if service.type == ServiceType.LOAD_BALANCER:
        ingress = ", ".join(i.ip for i in status.load_balancer.ingress) if status else ""
        fields.append(("LoadBalancer Ingress:", ingress or "<pending>"))
    if service.type == ServiceType.EXTERNAL_NAME:
        fields.append(("External Name:", service.external_name or "<none>"))
    return fields


Before = tuple["Service | None", "ServiceStatus | None"]


def _recent(items: list[HistoryItem]) -> list[tuple[HistoryItem, Before]]:
    """The last events, each with the service and status as they were before it."""
    paired: list[tuple[HistoryItem, Before]] = []
    before: Before = (None, None)
    for item in items:
        paired.append((item, before))
        status = status_after(item.event) if item.event is not None else before[1]
        before = (item.service, status)
    return paired[-RECENT:]


def _event_row(item: HistoryItem, before: Before, now: datetime) -> list[str]:
    from events import ServiceForceDeleted

    age = human_age(item.stored, now)
    event = item.event
    if event is None:
        return [age, str(item.seq), "?", "<unreadable>", item.problem or ""]
    if isinstance(event, ServiceForceDeleted):
        detail = f"forced over unreadable seq {event.overrides.seq}"
    else:
        detail = "; ".join(event_changes(event, *before))
    return [age, str(item.seq), event.actor, event.type, detail]


register(describe_app, describe_service, short_help="Show a service in full, with its last events.")


@connection_options
def describe_task(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Task name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    *,
    conn: Connection,
) -> None:
    """A live task in full: labels, address, readiness, heartbeat, the run of its announcer,
    and the services that select it.

    Example:  skyctl describe task web-1 -n shop
    """
    from cli.errors import fail
    from registry.discovery.endpoints import selects

    namespace, name = parse_name(namespace, "namespace"), parse_name(name)

    async def read() -> tuple[list[LiveTask], list[ServiceRecord]]:
        async with await conn.open() as registry:
            return await registry.tasks(namespace), await registry.list(namespace)

    tasks, services = run_command(read())
    found = next((t for t in tasks if t.name == name), None)
    if found is None:
        fail(f'task "{name}" not found in namespace "{namespace}" (or its TTL ran out)', 1)
    now = datetime.now(UTC)
    selecting = sorted(
        r.service.name for r in services if selects(r.service.selector, found.labels)
    )
    labels = [f"{k}={v}" for k, v in sorted(found.labels.items())] or ["<none>"]
    fields: list[tuple[str, str]] = [
        ("Name:", found.name),
        ("Namespace:", found.namespace),
        ("Labels:", labels[0]),
        *[("", label) for label in labels[1:]],
        ("Address:", found.address),
        ("Cluster:", found.cluster or "<none>"),
        ("Ports:", ", ".join(f"{k}={v}" for k, v in found.ports.items()) or "<none>"),
        ("Ready:", "draining" if found.draining else "true" if found.ready else "false"),
        ("Reason:", found.reason or "<none>"),
        ("Last Heartbeat:", f"{short_time(found.heard)} ({human_age(found.heard, now)} ago)"),
        ("TTL:", f"{found.ttl}s"),
        ("Announced Since:", f"{short_time(found.since)} ({human_age(found.since, now)} ago)"),
        ("Instance:", found.instance),
        ("Selected By:", ", ".join(f"service/{n}" for n in selecting) or "<none>"),
    ]
    width = max(len(label) for label, _ in fields) + 2
    print("\n".join(f"{label.ljust(width)}{safe(value)}" for label, value in fields))


register(describe_app, describe_task, "task", short_help="Show a live task in full.")
