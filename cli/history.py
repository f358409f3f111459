"""``skyctl history service``, ``skyctl events`` and ``skyctl audit verify``: the log for
auditors and scripts."""

import sys
from typing import TYPE_CHECKING, Annotated, Any, assert_never

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import NamespaceOpt, Output, output_option
from cli.parse import parse_name, parse_service_ref
from cli.proof import TrustOpt, load_trust
from cli.render import (
    Table,
    camel_keys,
    proof_cell,
    short_time,
    signing_in_use,
    spec_cells,
    to_json,
    to_yaml,
)
from cli.serviceviews import (
    HISTORY_COLUMNS,
    history_proofs,
    history_rows,
    update_changes,
    with_before,
)
from cli.terminal import safe
from cli.verbs import verb_app
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from events import Service
    from events.membership import Transition
    from registry.services.audit import Acknowledged
    from registry.services.feed import LogRecord
    from registry.services.history import HistoryItem
    from registry.services.proof import Proof
    from registry.services.when import When

__all__ = ["audit_app", "events", "history_app"]

history_app = verb_app("Show the history of a resource.")
audit_app = typer.Typer(
    help="Check the log's integrity; acknowledge a break that was investigated.",
    no_args_is_help=True,
)

EVENT_COLUMNS = ("SEQ", "STORED", "ACTOR", "PROOF", "EVENT", "NAMESPACE", "NAME", "DETAILS")
# events -f: the widths of its columns before any row is known (ServiceForceDeleted: 19).
FOLLOW_WIDTHS = (6, 20, 12, 14, 19, 12, 16)


# -- history ------------------------------------------------------------------------------


@connection_options
def history_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    output: Annotated[Output, output_option(Output.table, Output.json, Output.yaml)] = (
        Output.table
    ),
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Every event of a service, oldest first, with the service as it was after each.

    Works for deleted services too.  Example:  skyctl history service myService
    """
    namespace, name = parse_name(namespace, "namespace"), parse_service_ref(name)
    trust = load_trust(trust_file)

    async def read() -> list["HistoryItem"]:
        async with await conn.open() as registry:
            return await registry.history(namespace, name)

    items = run_command(read())
    if output is Output.table:
        rows = history_rows(items, trust)
        print(Table(HISTORY_COLUMNS, rows).render(rows))
        return
    paired = zip(with_before(items), history_proofs(items, trust), strict=True)
    objects = [_history_object(item, before, proof) for (item, before), proof in paired]
    print(to_json(objects) if output is Output.json else to_yaml(objects))


def _history_object(
    item: "HistoryItem", before: "Service | None", proof: "Proof | None"
) -> dict[str, Any]:
    obj: dict[str, Any] = {"seq": item.seq, "stored": short_time(item.stored)}
    if item.event is None:
        obj["error"] = item.problem
    else:
        obj["event"] = camel_keys(item.event.model_dump(mode="json"))
        if changed := update_changes(item, before):
            obj["changes"] = changed
        if proof is not None:
            obj["proof"] = {"status": proof.status, "detail": proof.detail}
    obj["service"] = camel_keys(item.service.model_dump(mode="json")) if item.service else None
    return obj


history_app.command(
    "service",
    epilog="Aliases of service: services, svc.",
    short_help="Every event of a service, oldest first.",
)(history_service)


# -- events -------------------------------------------------------------------------------


@connection_options
def events(
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Events of every namespace.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Start at a stream sequence (1234), a time (2026-11-25T10:00:00Z) or a "
            "duration ago (90m, 2d).",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            "--watch",
            "-w",
            help="Keep printing events as they are appended (from now, unless --since); "
            "-w as kubectl events.",
        ),
    ] = False,
    for_object: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="KIND/NAME",
            help="Only the events of one service (service/NAME), or the membership "
            "transitions of one task (task/NAME: joined, readiness, left; from skyctl record).",
        ),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            metavar="SITE",
            help="With --for task/NAME, asked of a hub: a task of that site, from the hub's "
            "copy of the site's membership history.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Output,
        output_option(Output.table, Output.json, help="table, or json: one object per line."),
    ] = Output.table,
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """The event log itself, in order.

    Example:  skyctl events -A --since 2h -o json

              skyctl events --for task/web-1 -n shop
    """
    from registry.services.when import parse_when

    scope = None if all_namespaces else parse_name(namespace, "namespace")
    when = parse_when(since) if since is not None else None
    trust = load_trust(trust_file)
    kind, name = _object_name(for_object) if for_object is not None else ("service", None)
    if name is not None and scope is None:
        raise InvalidInput("--for", for_object, f"one {kind} is in one namespace: drop -A")
    if site is not None:
        from registry.sites.model import check_site_name

        check_site_name(site)
        if kind != "task":
            raise InvalidInput(
                "--site", site, "a site keeps tasks' transitions only: give --for task/NAME"
            )
    if kind == "task":
        assert scope is not None and name is not None and for_object is not None
        if follow:
            raise InvalidInput(
                "--for", for_object, "a task's transitions are not followed: use get tasks -w"
            )
        _task_events(conn, scope, name, when, output, site)
        return

    async def run() -> int:
        from registry.log.entry import Entry

        printed = 0
        async with await conn.open(keep_reconnecting=follow) as registry:
            table: Table | None = None
            start = when
            if follow and start is None:
                # "From now" is the log's end as the header shows: nothing appended after
                # it is missed while the consumer is being made.
                from registry.services.when import AtSequence

                start = AtSequence(await registry.log.last_sequence() + 1)
            if follow and output is Output.table:
                # The header at once, as kubectl's watches print theirs: someone waiting
                # for the first event sees the command is running. Its widths cannot come
                # from rows not yet read: room for the usual ones.
                table = Table(EVENT_COLUMNS, [], min_widths=FOLLOW_WIDTHS)
                print(table.line(table.header), flush=True)
            # Read from the start, each subject's chain is met in order; otherwise the log
            # is asked where a signed event stands.
            prover = registry.prover(trust, from_start=when is None and not follow)
            # Unsigned events read "-" until one signed event shows signing is in use.
            signing = trust is not None
            async for record in registry.events(scope, since=start, follow=follow, name=name):
                proof: Proof | None = None
                if isinstance(record.entry, Entry):
                    event = record.entry.event
                    proof = await prover.prove(record.message, event.actor, event.prev)
                else:
                    prover.met(record.message)
                if output is Output.json:
                    print(to_json(_event_object(record, proof), compact=True), flush=True)
                else:
                    signing = signing or signing_in_use(trust, [proof])
                    row = _event_row(record, proof, signing)
                    if table is None:
                        table = Table(EVENT_COLUMNS, [row], min_widths=[6, 20, 12, 14])
                        print(table.line(table.header))
                    print(table.line(row), flush=True)
                printed += 1
        return printed

    try:
        printed = run_command(run())
    except KeyboardInterrupt:
        return
    if not printed and output is Output.table and not follow:
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No events found in {where}.", file=sys.stderr)


def _object_name(text: str) -> tuple[str, str]:
    """``service/NAME`` (or ``svc/NAME``, ``services/NAME``) or ``task/NAME``, as kubectl
    names an object: the kind and the name."""
    kind, slash, name = text.partition("/")
    kinds = {"service": "service", "services": "service", "svc": "service", "task": "task"}
    if not slash or kind not in kinds:
        raise InvalidInput("--for", text, "give service/NAME or task/NAME")
    return kinds[kind], parse_name(name)


def _task_events(
    conn: Connection,
    namespace: str,
    name: str,
    since: "When | None",
    output: Output,
    site: str | None,
) -> None:
    """A task's membership transitions, oldest first (``--since`` a time or a while ago)."""
    from datetime import UTC, datetime

    from cli.transitions import TRANSITION_COLUMNS, transition_object, transition_row
    from registry.discovery.served import task_transitions
    from registry.services.when import AtTime

    if since is not None and not isinstance(since, AtTime):
        raise InvalidInput(
            "--since", str(since), "a task's transitions start at a time: 2h, or RFC 3339"
        )

    async def read() -> "list[tuple[int, Transition]]":
        async with await conn.open() as registry:
            start = None if since is None else since.time
            return await task_transitions(registry.log, namespace, name, since=start, site=site)

    found = run_command(read())
    if output is Output.json:
        for stored, event in found:
            moment = datetime.fromtimestamp(stored / 1e9, UTC)
            print(to_json(transition_object(event, moment), compact=True))
        return
    if not found:
        at = "" if site is None else f" at site {site}"
        print(
            f"No transitions found for task/{name} in {namespace} namespace{at}.", file=sys.stderr
        )
        return
    rows = [transition_row(event) for _, event in found]
    print(Table(TRANSITION_COLUMNS, rows).render(rows))


def _event_row(record: "LogRecord", proof: "Proof | None", signing: bool) -> list[str]:
    from cli.views import labels_cell
    from events import (
        ServiceCreated,
        ServiceDeleted,
        ServiceForceDeleted,
        ServiceStatusChanged,
        ServiceUpdated,
    )
    from registry.log.entry import Entry

    message, entry = record.message, record.entry
    stored = short_time(message.time)
    if not isinstance(entry, Entry):
        namespace, _, name = message.subject.removeprefix("skyflow.svc.").partition(".")
        return [str(record.seq), stored, "?", "?", "<unreadable>", namespace, name, entry.reason]
    event = entry.event
    match event:
        case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
            kind, selector, ports, cluster = spec_cells(event.service)
            details = f"type={kind} selector={selector} ports={ports} cluster={cluster}"
            if event.service.labels:
                details += f" labels={labels_cell(event.service.labels)}"
        case ServiceDeleted():
            details = ""
        case ServiceForceDeleted():
            overridden = event.overrides
            details = f"forced over unreadable seq {overridden.seq}: {overridden.reason}"
        case _:
            assert_never(event)
    return [
        str(record.seq),
        stored,
        event.actor,
        proof_cell(proof, signing),
        event.type,
        event.namespace,
        event.name,
        details,
    ]


def _event_object(record: "LogRecord", proof: "Proof | None") -> dict[str, Any]:
    from registry.log.entry import Entry

    obj: dict[str, Any] = {
        "seq": record.seq,
        "stored": short_time(record.message.time),
        "subject": record.message.subject,
    }
    if isinstance(record.entry, Entry):
        event = record.entry.event
        obj["event"] = camel_keys(event.model_dump(mode="json"))
        if proof is not None:
            obj["proof"] = {"status": proof.status, "detail": proof.detail}
    else:
        obj["error"] = record.entry.reason
    return obj


# -- audit --------------------------------------------------------------------------------


@connection_options
def verify(
    trust_file: TrustOpt = None,
    since: Annotated[
        int | None,
        typer.Option(
            "--since",
            metavar="SEQ",
            help="Verify from this stream sequence on (each chain's first link met is "
            "checked against the message before it).",
            show_default=False,
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Recompute every service's hash chain and check every signature; list each break.

    With --trust, also list every event whose actor is not verified by a trusted key.
    A break an admin acknowledged (skyctl audit acknowledge) is listed as ACKNOWLEDGED
    and does not fail the check. Exit 0 only if every other link and signature holds
    (and, with --trust, every actor is verified): a scheduled check.

    Example:  skyctl audit verify --trust keys.txt

              skyctl audit verify --since 120000
    """
    from cli.auditviews import Audit, Finding, audit

    if since is not None and since < 1:
        raise InvalidInput("--since", since, "a stream sequence is 1 or more")
    trust = load_trust(trust_file)

    def show(finding: Finding) -> None:
        print(finding, flush=True)

    async def run() -> Audit:
        async with await conn.open() as registry:
            return await audit(registry, trust, since=since, found=show)

    result = run_command(run())
    if result.actors is not None:
        print(result.actors, file=sys.stdout if result.holds else sys.stderr)
    if not result.holds:
        print(result.verdict, file=sys.stderr)
        raise typer.Exit(1)
    print(result.verdict)


@connection_options
def acknowledge(
    seq: Annotated[
        int,
        typer.Argument(metavar="SEQ", help="The stream sequence of the break.", show_default=False),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why the break is accepted (a ticket, what was found).",
            show_default=False,
        ),
    ] = "",
    *,
    conn: Connection,
) -> None:
    """Record that a break audit verify reports was investigated (admins only), so that
    audit verify lists it as acknowledged and passes if nothing else is wrong.

    The log itself cannot be mended; the acknowledgement is an event of its own
    (BreakAcknowledged), naming the sequence, the reason and who acknowledged it.

    Example:  skyctl audit acknowledge 4711 --reason "INC-42: test publish, harmless"
    """
    if seq < 1:
        raise InvalidInput("SEQ", seq, "a stream sequence is 1 or more")
    if not reason.strip():
        raise InvalidInput("--reason", reason, "say why the break is accepted")

    async def run() -> "tuple[Acknowledged, bool]":
        async with await conn.open() as registry:
            return await registry.acknowledge_break(seq, reason)

    done, new = run_command(run())
    if new:
        print(f"break at seq {seq} acknowledged (seq {done.seq})")
    else:
        print(f"break at seq {seq} already {safe(str(done))}")


audit_app.command("verify", short_help="Check every hash chain and signature.")(verify)
audit_app.command("acknowledge", short_help="Record that a break was investigated.")(acknowledge)
