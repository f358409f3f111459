"""``skyctl describe service NAME``: one service in full, and what happened to it lately."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import Table, human_age, record_proof, short_time
from cli.terminal import safe
from cli.verbs import NamespaceOpt, register, verb_app

if TYPE_CHECKING:
    from events import Service
    from registry.history import HistoryItem
    from registry.projection import ServiceRecord
    from registry.proof import Trust

__all__ = ["describe_app"]

describe_app = verb_app("Show details of a resource.")
RECENT = 10  # events shown, newest last, as kubectl shows a resource's events


@connection_options
def describe_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Every field of a service, its labels, revision, who created it and when, and its
    last 10 events (age, actor, what changed).

    Example:  skyctl describe service web -n shop
    """
    namespace, name = parse_name(namespace, "namespace"), parse_name(name)
    trust = load_trust(trust_file)

    async def read() -> tuple[ServiceRecord, list[HistoryItem]]:
        async with await conn.open() as registry:
            return await registry.get(namespace, name), await registry.history(namespace, name)

    record, items = asyncio.run(read())
    print(render(record, items, trust))


def render(record: ServiceRecord, items: list[HistoryItem], trust: Trust | None) -> str:
    now = datetime.now(UTC)
    service = record.service
    labels = [f"{k}={v}" for k, v in sorted(service.labels.items())] or ["<none>"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(service.selector.items())) or "<none>"
    proof = record_proof(record, trust)
    fields: list[tuple[str, str]] = [
        ("Name:", service.name),
        ("Namespace:", service.namespace),
        ("Labels:", labels[0]),
        *[("", label) for label in labels[1:]],
        ("UID:", record.event_id),
        ("Revision:", str(record.seq)),
        ("Created:", f"{short_time(record.created)} ({human_age(record.created, now)} ago)"),
        ("Created By:", record.actor),
        ("Last Changed By:", f"{record.last_actor} ({proof})"),
        ("Type:", service.type.value),
        ("Selector:", selector),
        ("Cluster:", service.cluster or "<none>"),
    ]
    for port in service.ports or ():
        fields.append(("Port:", f"{port.port}/{port.protocol.value}"))
        fields.append(("TargetPort:", f"{port.target_port}/{port.protocol.value}"))
    if not service.ports:
        fields.append(("Port:", "<none>"))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label.ljust(width)}{safe(value)}" for label, value in fields]
    lines.append("Events:")
    rows = [_event_row(item, before, now) for item, before in _recent(items)]
    table = Table(("AGE", "SEQ", "ACTOR", "EVENT", "CHANGES"), rows)
    lines += ["  " + line for line in table.render(rows).splitlines()]
    return "\n".join(lines)


def _recent(items: list[HistoryItem]) -> list[tuple[HistoryItem, Service | None]]:
    befores = [None, *(item.service for item in items[:-1])]
    return list(zip(items, befores, strict=True))[-RECENT:]


def _event_row(item: HistoryItem, before: Service | None, now: datetime) -> list[str]:
    from events import ServiceForceDeleted, ServiceUpdated
    from registry.diff import changes

    age = human_age(item.stored, now)
    event = item.event
    if event is None:
        return [age, str(item.seq), "?", "<unreadable>", item.problem or ""]
    if isinstance(event, ServiceUpdated):
        detail = "; ".join(str(c) for c in changes(before, item.service))
    elif isinstance(event, ServiceForceDeleted):
        detail = f"forced over unreadable seq {event.overrides.seq}"
    else:
        detail = ""
    return [age, str(item.seq), event.actor, event.type, detail]


register(describe_app, describe_service)
