"""A service as ``describe``, ``history`` and ``get endpoints -o wide`` show it: the
renderings those verbs print and the web UI's service pages reuse (one implementation,
shared by both, so a page and the CLI cannot disagree)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cli.render import (
    UNSIGNED,
    Table,
    endpoints_cell,
    event_changes,
    human_age,
    lease_cell,
    proof_cell,
    record_proof,
    short_time,
    signing_in_use,
    spec_cells,
    status_after,
)
from cli.terminal import safe

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from events import Port, Service, ServiceStatus
    from events.membership import Transition
    from registry.client import Registry
    from registry.discovery.crosssite import SiteTasks
    from registry.discovery.endpoints import EndpointAddress, Endpoints
    from registry.discovery.tasks import LiveTask
    from registry.services.history import HistoryItem
    from registry.services.projection import ServiceRecord
    from registry.services.proof import Proof, Trust

__all__ = [
    "DNS_COLUMNS",
    "ENDPOINT_LIVE_COLUMNS",
    "ENDPOINT_WIDE_COLUMNS",
    "HISTORY_COLUMNS",
    "RECENT",
    "dns_rows",
    "endpoints_and_tasks",
    "history_proofs",
    "history_row",
    "history_rows",
    "membership",
    "membership_text",
    "place",
    "recent_transitions",
    "render",
    "update_changes",
    "wide_rows",
    "with_before",
]

RECENT = 10  # events shown, newest last, as kubectl shows a resource's events
# get endpoints -o wide: a row per address.
ENDPOINT_WIDE_COLUMNS = ("NAME", "CLUSTER", "ADDRESS", "PORTS", "READY", "TASK")
# ...and, given the tasks behind them, what ``get tasks -o wide`` says of each: how long
# ago the server stored its last heartbeat, the TTL it dies by, why it is not ready.
ENDPOINT_LIVE_COLUMNS = (*ENDPOINT_WIDE_COLUMNS, "HEARTBEAT", "TTL", "REASON")
# What `skyctl dns` answers for the service: the question, the response code, a record.
DNS_COLUMNS = ("QUESTION", "STATUS", "RECORD")


# -- describe -----------------------------------------------------------------------------


def place(record: ServiceRecord, items: list[HistoryItem]) -> None:
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
    now: datetime | None = None,
    sites: Sequence[SiteTasks] = (),
) -> str:
    """``describe svc``'s text; ages as they read at ``now`` (a past page's moment). At a
    hub, ``sites`` (``Registry.site_tasks``) add a line per site: its lease and the
    service's ready endpoints among the tasks it last reported, as ``get endpoints``
    lists them there."""
    now = now or datetime.now(UTC)
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
    if endpoints is not None:
        fields += _site_lines(endpoints, sites)
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label.ljust(width)}{safe(value)}" for label, value in fields]
    lines.append("Events:")
    rows = [_event_row(item, before, now) for item, before in _recent(items)]
    table = Table(("AGE", "SEQ", "ACTOR", "EVENT", "CHANGES"), rows)
    lines += ["  " + line for line in table.render(rows).splitlines()]
    return "\n".join(lines)


def _site_lines(endpoints: Endpoints, sites: Sequence[SiteTasks]) -> list[tuple[str, str]]:
    """``Site Endpoints:`` lines, a site each: name, lease, ready endpoints (none shown
    for a revoked site, whose endpoints the hub no longer serves)."""
    from registry.discovery.crosssite import site_endpoints

    lines = []
    for one in sites:
        cell = endpoints_cell(site_endpoints(endpoints, one))
        lines.append(("", f"{one.site}  {lease_cell(one.state, one.silent_s)}  {cell}"))
    if lines:
        lines[0] = ("Site Endpoints:", lines[0][1])
    return lines


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


# -- membership ---------------------------------------------------------------------------


async def recent_transitions(registry: Registry, record: ServiceRecord) -> list[Transition] | None:
    """The last transitions of the tasks the service selects, over the last day, newest
    first (None: nothing records membership)."""
    from datetime import timedelta

    from registry.discovery.served import recent_transitions as recent
    from registry.jetstream.membership import NotRecorded

    service = record.service
    if not service.selector:
        return []
    since = datetime.now(UTC) - timedelta(days=1)
    try:
        return await recent(
            registry.log, service.namespace, service.selector, since=since, limit=RECENT
        )
    except NotRecorded:
        return None


def membership(transitions: list[Transition] | None) -> tuple[str | None, list[list[str]]]:
    """The recent transitions as rows (``TRANSITION_COLUMNS``), newest last, or what to
    say instead when there are none (not recorded, or none in the last day)."""
    from cli.transitions import transition_row

    if transitions is None:
        return "<not recorded: run skyctl record>", []
    if not transitions:
        return "<none in the last day>", []
    return None, [transition_row(t) for t in reversed(transitions)]


def membership_text(transitions: list[Transition] | None) -> str:
    """``Membership:`` and the recent transitions, newest last, as ``Events:``."""
    from cli.transitions import TRANSITION_COLUMNS

    instead, rows = membership(transitions)
    if instead is not None:
        return f"Membership:    {instead}"
    table = Table(TRANSITION_COLUMNS, rows)
    return "\n".join(["Membership:", *("  " + line for line in table.render(rows).splitlines())])


# -- history ------------------------------------------------------------------------------


HISTORY_COLUMNS = (
    "SEQ",
    "STORED",
    "ACTOR",
    "PROOF",
    "EVENT",
    "TYPE",
    "SELECTOR",
    "PORTS",
    "CLUSTER",
    "CHANGES",
)


def history_proofs(items: list[HistoryItem], trust: Trust | None) -> list[Proof | None]:
    """What each event of one service's whole history proves (None: unreadable), each
    judged in its place: the history is its subject's chain from the start."""
    from registry.services.proof import Prover

    prover = Prover(trust, from_start=True)
    proofs: list[Proof | None] = []
    for item in items:
        message, event = item.message, item.event
        if message is not None and event is not None:
            proofs.append(prover.in_order(message, event.actor, event.prev))
            continue
        if message is not None:
            prover.met(message)
        proofs.append(None)
    return proofs


def with_before(items: list[HistoryItem]) -> list[tuple[HistoryItem, Service | None]]:
    """Each item with the service as it was before it (for what an update changed)."""
    paired: list[tuple[HistoryItem, Service | None]] = []
    before: Service | None = None
    for item in items:
        paired.append((item, before))
        before = item.service
    return paired


def update_changes(item: HistoryItem, before: Service | None) -> list[str]:
    from events import ServiceUpdated
    from registry.services.diff import changes

    if not isinstance(item.event, ServiceUpdated):
        return []
    return [str(change) for change in changes(before, item.service)]


def history_row(
    item: HistoryItem, before: Service | None, proof: Proof | None, signing: bool
) -> list[str]:
    if item.event is None:
        return [
            str(item.seq),
            short_time(item.stored),
            "?",
            "?",
            "<unreadable>",
            item.problem or "",
            "",
            "",
            "",
            "",
        ]
    state = spec_cells(item.service) if item.service else ["<deleted>", "", "", ""]
    event = item.event
    changed = "; ".join(update_changes(item, before))
    shown = proof_cell(proof, signing)
    return [str(item.seq), short_time(item.stored), event.actor, shown, event.type, *state, changed]


def history_rows(items: list[HistoryItem], trust: Trust | None) -> list[list[str]]:
    """``history svc NAME``'s table rows (``HISTORY_COLUMNS``), oldest first."""
    proofs = history_proofs(items, trust)
    signing = signing_in_use(trust, proofs)
    paired = zip(with_before(items), proofs, strict=True)
    return [history_row(item, before, proof, signing) for (item, before), proof in paired]


# -- endpoints ----------------------------------------------------------------------------


def wide_rows(endpoints: Endpoints, tasks: Mapping[str, LiveTask] | None = None) -> list[list[str]]:
    """``get endpoints -o wide``'s rows (``ENDPOINT_WIDE_COLUMNS``); given the live
    ``tasks`` behind them (by name), each row goes on with the columns ``get tasks -o
    wide`` shows of its task (``ENDPOINT_LIVE_COLUMNS``)."""
    now = datetime.now(UTC)

    def ports(a: EndpointAddress) -> str:
        pairs = zip(endpoints.targets(a), endpoints.ports, strict=True)
        cells = [f"{t}/{p.protocol.value}" for t, p in pairs if t is not None]
        return ",".join(cells) or "<none>"

    def heartbeat(a: EndpointAddress) -> list[str]:
        task = None if tasks is None else tasks.get(a.task)
        if task is None:
            return ["<unknown>"] * 3
        return [human_age(task.heard, now), f"{task.ttl}s", task.reason or "<none>"]

    rows = [
        [
            endpoints.name,
            a.cluster or "<none>",
            a.address,
            ports(a),
            "draining" if a.draining else "true" if a.ready else "false",
            a.task,
            *([] if tasks is None else heartbeat(a)),
        ]
        for a in endpoints.addresses
    ]
    width = len(ENDPOINT_WIDE_COLUMNS if tasks is None else ENDPOINT_LIVE_COLUMNS)
    return rows or [[endpoints.name, *["<none>"] * (width - 1)]]


async def endpoints_and_tasks(
    registry: Registry, record: ServiceRecord
) -> tuple[Endpoints, dict[str, LiveTask]]:
    """The service's endpoints and the live tasks behind them, from one read of the tasks
    its selector's first label picks (as ``Registry.endpoints`` reads them), so the two
    agree on every task."""
    from registry.discovery.endpoints import endpoints_for, index_label

    service = record.service
    label = index_label(service.selector)
    tasks = [] if label is None else await registry.tasks(service.namespace, label=label)
    endpoints = endpoints_for(service, tasks)
    chosen = {a.task for a in endpoints.addresses}
    return endpoints, {
        t.name: t for t in tasks if t.namespace == service.namespace and t.name in chosen
    }


# -- DNS ----------------------------------------------------------------------------------


def dns_rows(
    record: ServiceRecord,
    endpoints: Endpoints,
    *,
    domain: str = "skyflow.",
    ttl: int = 5,
    cluster_ips: bool = False,
) -> list[list[str]]:
    """What ``skyctl dns`` (with this ``domain``, ``ttl`` and ``--cluster-ips``) answers
    for the service's names (A, AAAA and SRV of ``<service>.<namespace>.svc.<domain>``,
    SRV of each port's ``_<port>._<proto>`` name), asked of the DNS server's own zone
    holding the service as it is now: a row per record (``DNS_COLUMNS``), additional
    records marked, or one saying there are none."""
    import dns.name
    import dns.rcode
    import dns.rdatatype

    from registry.dns.zone import Zone

    zone = Zone(domain, ttl=ttl, cluster_ips=cluster_ips)
    service = record.service
    zone.set_service(endpoints.key, endpoints, service.cluster_ip, service.external_name)
    owner = dns.name.Name(
        (service.name.lower().encode(), service.namespace.lower().encode(), b"svc")
    ).concatenate(zone.domain)
    questions = [(owner, kind) for kind in (dns.rdatatype.A, dns.rdatatype.AAAA)]
    questions.append((owner, dns.rdatatype.SRV))
    for port in service.ports or ():
        label = f"_{port.name or port.port}".encode()
        protocol = f"_{port.protocol.value.lower()}".encode()
        questions.append((dns.name.Name((label, protocol)).concatenate(owner), dns.rdatatype.SRV))
    rows: list[list[str]] = []
    for name, kind in questions:
        answer = zone.answer(name, kind, turn=0)
        asked = f"{name.to_text()} {dns.rdatatype.to_text(kind)}"
        status = dns.rcode.to_text(answer.rcode)
        found = [line for rrset in answer.answer for line in rrset.to_text().splitlines()]
        found += [
            f"{line} (additional)"
            for rrset in answer.additional
            for line in rrset.to_text().splitlines()
        ]
        if answer.windows > 1:
            found.append(f"(window 1 of {answer.windows}: each query gets the next)")
        rows += [[asked, status, line] for line in found] or [[asked, status, "<no records>"]]
    return rows
