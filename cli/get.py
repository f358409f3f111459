"""``skyctl get service``: one service, a namespace, every namespace, the past, or a watch;
filtered, sorted and printed the ways ``kubectl get`` offers, so scripts carry over."""

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, connection_options
from cli.options import Format, NamespaceOpt, Output, format_option
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import (
    Table,
    service_object,
    to_json,
    to_yaml,
)
from cli.verbs import register, verb_app
from cli.views import TABLE, TABLES, View
from registry.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.discovery.follower import Discovered, EndpointsChanged
    from registry.log.stored import StoredMessage
    from registry.services.history import PastState
    from registry.services.projection import Change, ServiceKey, ServiceRecord
    from registry.services.proof import Trust
    from registry.services.status import StatusFeed
    from registry.services.watch import Snapshot

__all__ = ["get_app"]

get_app = verb_app("Display one or many resources.")


@connection_options
def get_service(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="Service name; all services if omitted.", show_default=False
        ),
    ] = None,
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List services in every namespace.")
    ] = False,
    output: Annotated[Format, format_option(*Output)] = TABLE,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            "-l",
            metavar="SELECTOR",
            help="Only services whose labels match: k=v, k==v, k!=v, k, !k, k in (a,b), "
            "k notin (a,b); commas join them (and).",
        ),
    ] = None,
    show_labels: Annotated[
        bool, typer.Option("--show-labels", help="Add a LABELS column to the table.")
    ] = False,
    no_headers: Annotated[
        bool, typer.Option("--no-headers", help="Print tables without their header line.")
    ] = False,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by",
            metavar="JSONPATH",
            help="Sort the list by a path into the object -o json shows, e.g. "
            "{.metadata.name} or .spec.ports[0].port.",
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="After listing, print every change as it happens."),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="Show the registry as it was at a stream sequence (1234), a time "
            "(2026-11-25T10:00:00Z) or a duration ago (90m, 2d).",
        ),
    ] = None,
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Show one service, or all services in a namespace.

    Example:  skyctl get service myService
    """
    namespace = parse_name(namespace, "namespace")
    if name is not None:
        parse_name(name)
        if all_namespaces:
            raise InvalidInput("name", name, "a name cannot be combined with --all-namespaces")
        if selector is not None:
            raise InvalidInput(
                "label selector", selector, "a selector cannot be combined with a NAME"
            )
    # Every flag is checked before the server is asked anything: a bad template costs
    # no round trip and writes nothing.
    view = View(output, selector, show_labels, no_headers, sort_by, all_namespaces)
    scope = None if all_namespaces else namespace
    trust = load_trust(trust_file)
    if at is not None:
        if watch:
            raise InvalidInput(
                "time", at, "--at shows the past; it cannot be combined with --watch"
            )
        _get_at(conn, at, scope, name, view, trust)
        return
    if watch:
        _watch(conn, scope, name, view, trust)
        return

    async def get() -> list["ServiceRecord"]:
        async with await conn.open() as registry:
            records = view.select(await read(registry))
            if view.shows_proof:  # where each signed event stands in its chain
                await registry.prover(trust).place(records)
            return records

    async def read(registry: "Registry") -> list["ServiceRecord"]:
        if not view.shows_endpoints:
            if name is not None:
                return [await registry.get(namespace, name)]
            return await registry.list(scope)
        if name is not None:  # one service: only the tasks its selector picks
            record = await registry.get(namespace, name)
            found = [(record, await registry.endpoints(namespace, name, record=record))]
        else:
            found = [(f.record, f.endpoints) for f in await registry.list_endpoints(scope)]
        view.statuses = {record.key: endpoints.status for record, endpoints in found}
        return [record for record, _ in found]

    records = asyncio.run(get())
    if not records and view.says_when_empty:
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    view.print(records, single=name is not None, trust=trust)


def _get_at(
    conn: Connection,
    at: str,
    namespace: str | None,
    name: str | None,
    view: "View",
    trust: "Trust | None",
) -> None:
    from registry.services.when import parse_when

    when = parse_when(at)

    async def read() -> tuple["PastState", list["ServiceRecord"]]:
        async with await conn.open() as registry:
            past = await registry.at(when, namespace, name)
            records = view.select(past.projection.select())
            if view.shows_proof:  # the log is append-only: a place then is its place now
                await registry.prover(trust).place(records)
            return past, records

    past, records = asyncio.run(read())
    if name is not None and not past.projection.services:
        raise NotFound(namespace or "default", name)
    if not records and view.says_when_empty:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(
            f"No resources found in {where} at {when} (log sequence {past.seq}).", file=sys.stderr
        )
        return
    # AGE as it read then, so the table looks as it did at that moment.
    view.print(records, single=name is not None, now=past.moment, trust=trust)


def _watch(
    conn: Connection,
    namespace: str | None,
    name: str | None,
    view: View,
    trust: "Trust | None",
) -> None:
    from registry.discovery.follower import Discovered
    from registry.services.watch import Snapshot

    async def run() -> None:
        from registry.log.stored import StoredMessage

        async with await conn.open(keep_reconnecting=True) as registry:
            printer = _WatchPrinter(view, trust)
            # Where each signed event stands, looked up as it is shown.
            place = registry.prover(trust).place if view.shows_proof else None
            if not view.shows_endpoints:
                async for item in registry.watch(namespace, name):
                    if place is not None:
                        await place(item.records if isinstance(item, Snapshot) else [item.record])
                    printer.show(item)
                return
            # Statuses (external IPs) are on subjects of their own: followed beside.
            async with (
                registry.follow_statuses(namespace, name) as reports,
                registry.follow_endpoints(namespace, name) as follower,
            ):
                printer.reports = reports
                queue: asyncio.Queue[Any] = asyncio.Queue()

                async def pump(source: Any) -> None:
                    try:
                        async for item in source:
                            await queue.put(item)
                    except BaseException as exc:  # handed to the loop below, raised there
                        await queue.put(exc)
                        raise

                pumps = [asyncio.create_task(pump(s)) for s in (follower, reports)]
                try:
                    while True:
                        item = await queue.get()
                        if isinstance(item, BaseException):
                            raise item
                        if isinstance(item, StoredMessage):
                            printer.show_status(item)
                            continue
                        if place is not None:
                            if isinstance(item, Discovered):
                                await place([s.record for s in item.services])
                            else:
                                change = [item.change.record] if item.change else []
                                await place([item.service.record, *change])
                        printer.show_endpoints(item)
                finally:
                    for task in pumps:
                        task.cancel()
                    await asyncio.gather(*pumps, return_exceptions=True)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends, successfully
        asyncio.run(run())


class _WatchPrinter:
    """Prints the snapshot as ADDED rows, then each change, flushing every line.

    With a selector, a change that moves a service into the selection shows as ADDED and
    one that moves it out as DELETED, as a label-selected watch does in Kubernetes.
    """

    def __init__(self, view: View, trust: "Trust | None" = None) -> None:
        self.view = view
        self.trust = trust
        self.table: Table | None = None
        self.shown: set[ServiceKey] = set()
        self.reports: StatusFeed | None = None  # statuses followed beside (endpoints view)
        self.records: dict[ServiceKey, ServiceRecord] = {}  # each shown service, as shown

    def show_status(self, message: "StoredMessage") -> None:
        """A controller's report: a MODIFIED row for the service it is about, if shown."""
        from registry.services.projection import Change

        _, namespace, name = message.subject.rsplit(".", 2)
        record = self.records.get((namespace, name))
        if record is not None:
            self.show(Change("MODIFIED", message.seq, record, record.event))

    @property
    def tabular(self) -> bool:
        return self.view.output in TABLES or self.view.columns is not None

    def show(self, item: "Snapshot | Change") -> None:
        from registry.services.watch import Snapshot

        reports = self.reports
        if isinstance(item, Snapshot):
            records = [reports.attach(r) for r in item.records] if reports else item.records
            changes = [("ADDED", record) for record in self.view.select(records)]
            if self.tabular:
                rows = [["ADDED", *self.view.row(r, trust=self.trust)] for _, r in changes]
                header = ["EVENT", *self.view.header()]
                if self.view.no_headers:
                    header = [""] * len(header)
                self.table = Table(header, rows, min_widths=[len("MODIFIED")])
                if not self.view.no_headers:
                    print(self.table.line(self.table.header), flush=True)
        else:
            kind = self._kind(item)
            if kind is None:
                return
            changes = [(kind, reports.attach(item.record) if reports else item.record)]
        for kind, record in changes:
            if kind == "DELETED":
                self.shown.discard(record.key)
                self.records.pop(record.key, None)
            else:
                self.shown.add(record.key)
                self.records[record.key] = record
            self._line(kind, record)

    def show_endpoints(self, item: "Discovered | EndpointsChanged") -> None:
        """A service's change, or its ENDPOINTS changing alone: a MODIFIED row too."""
        from registry.discovery.follower import Discovered
        from registry.services.projection import Change
        from registry.services.watch import Snapshot

        statuses = self.view.statuses = self.view.statuses or {}
        if isinstance(item, Discovered):
            statuses.update((s.key, s.endpoints.status) for s in item.services)
            self.show(Snapshot([s.record for s in item.services], 0))
            return
        record, status = item.service.record, item.service.endpoints.status
        before = statuses.get(record.key)
        statuses[record.key] = status
        if item.change is not None:
            self.show(item.change)
        elif status != before:
            self.show(Change("MODIFIED", record.seq, record, record.event))

    def _kind(self, change: "Change") -> str | None:
        """What the change is to someone watching only the selected services."""
        if self.view.selector is None:
            return change.kind
        was_shown = change.record.key in self.shown
        if change.kind == "DELETED":
            return "DELETED" if was_shown else None
        if self.view.matches(change.record):
            return change.kind if was_shown else "ADDED"
        return "DELETED" if was_shown else None

    def _line(self, kind: str, record: "ServiceRecord") -> None:
        view, trust = self.view, self.trust
        if self.tabular and self.table is not None:
            text = self.table.line([kind, *view.row(record, trust=trust)])
        elif view.output is Output.name:
            text = f"{kind}\tservice/{record.service.name}"
        else:
            obj: dict[str, Any] = {"type": kind, "object": service_object(record, trust)}
            if view.template is not None:
                sys.stdout.write(view.template.render(obj))
                sys.stdout.flush()
                return
            if view.output is Output.json:
                text = to_json(obj, compact=True)
            else:
                text = "---\n" + to_yaml(obj)
        print(text, flush=True)


register(get_app, get_service)
