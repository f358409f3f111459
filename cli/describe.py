"""``skyctl describe service [NAME...]``: services in full, and what
happened to them lately."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import NamespaceOpt, label_selector_option
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import human_age, short_time
from cli.serviceviews import membership_text, place, recent_transitions, render
from cli.targets import service_targets
from cli.terminal import safe
from cli.verbs import register, verb_app

if TYPE_CHECKING:
    from events.membership import Transition
    from registry.discovery.crosssite import SiteTasks
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.tasks import LiveTask
    from registry.services.history import HistoryItem
    from registry.services.projection import ServiceRecord

__all__ = ["describe_app"]

describe_app = verb_app("Show details of a resource.")
_Described = tuple["ServiceRecord", "list[HistoryItem]", "Endpoints", "list[Transition] | None"]


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

    async def read() -> tuple[list[_Described], list[SiteTasks]]:
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
                transitions = await recent_transitions(registry, record)
                described.append((record, items, endpoints, transitions))
            return described, await registry.readable_sites()

    described, sites = run_command(read())
    if not described:
        print(f"No resources found in {namespace} namespace.", file=sys.stderr)
    for index, (record, items, endpoints, transitions) in enumerate(described):
        if index:
            print()  # kubectl's blank line between two
        place(record, items)
        print(render(record, items, trust, endpoints, sites=sites))
        print(membership_text(transitions))


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
