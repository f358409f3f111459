"""``skyctl get service``: one service, a namespace, every namespace, the past, or a watch;
filtered, sorted and printed the ways ``kubectl get`` offers, so scripts carry over."""

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, connection_options
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import (
    Table,
    columns,
    list_object,
    service_object,
    service_row,
    to_json,
    to_yaml,
)
from cli.verbs import Format, NamespaceOpt, Output, format_option, register, verb_app
from registry.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from datetime import datetime

    from cli.columns import Column
    from cli.selector import Selector
    from cli.template import Path as JsonPath
    from cli.template import Template
    from events import Service
    from registry.discovery.follower import Discovered, EndpointsChanged
    from registry.services.history import PastState
    from registry.services.projection import Change, ServiceKey, ServiceRecord
    from registry.services.proof import Trust
    from registry.services.watch import Snapshot

__all__ = ["View", "get_app", "print_records"]

get_app = verb_app("Display one or many resources.")

_TABLES = (Output.table, Output.wide)
TABLE = Format(Output.table.value)


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

    records = view.select(asyncio.run(get()))
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

    async def read() -> "PastState":
        async with await conn.open() as registry:
            return await registry.at(when, namespace, name)

    past = asyncio.run(read())
    records = past.projection.select()
    if name is not None and not records:
        raise NotFound(namespace or "default", name)
    records = view.select(records)
    if not records and view.says_when_empty:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(
            f"No resources found in {where} at {when} (log sequence {past.seq}).", file=sys.stderr
        )
        return
    # AGE as it read then, so the table looks as it did at that moment.
    view.print(records, single=name is not None, now=past.moment, trust=trust)


def print_records(
    records: "Sequence[ServiceRecord]",
    output: Output | Format,
    *,
    single: bool,
    now: "datetime | None" = None,
    trust: "Trust | None" = None,
) -> None:
    """Services as ``get -o`` prints them (``create -o`` prints what it made this way)."""
    fmt = output if isinstance(output, Format) else Format(output.value)
    View(fmt).print(records, single=single, now=now, trust=trust)


def labels_cell(service: "Service") -> str:
    """The LABELS column of ``--show-labels``, as kubectl writes it."""
    return ",".join(f"{k}={v}" for k, v in sorted(service.labels.items())) or "<none>"


class View:
    """What ``get``'s flags ask for, parsed once: which services, in which order, printed
    how. Templates and selectors are compiled here, before anything is read."""

    def __init__(
        self,
        fmt: Format,
        selector: str | None = None,
        show_labels: bool = False,
        no_headers: bool = False,
        sort_by: str | None = None,
        all_namespaces: bool = False,
    ) -> None:
        self.fmt = fmt
        self.all_namespaces = all_namespaces  # tables lead with NAMESPACE, as kubectl's
        self.output = fmt.output
        self.show_labels = show_labels
        self.no_headers = no_headers
        # Each service's ENDPOINTS (ready/total) for the tables, when they were read.
        self.statuses: dict[ServiceKey, str] | None = None
        self.selector: Selector | None = None
        self.sort: JsonPath | None = None
        self.template: Template | None = None
        self.columns: list[Column] | None = None
        if selector is not None:
            from cli.selector import parse_label_selector

            self.selector = parse_label_selector(selector)
        if sort_by:
            from cli.template import relaxed_path

            self.sort = relaxed_path(sort_by)
        if fmt.name in ("jsonpath", "jsonpath-file"):
            from cli import template

            self.template = template.Template(self._argument_text())
        elif fmt.name in ("custom-columns", "custom-columns-file"):
            from cli.columns import columns_from_file, parse_columns

            if fmt.name == "custom-columns":
                self.columns = parse_columns(fmt.argument)
            else:
                self.columns = columns_from_file(fmt.argument, self._argument_text())

    def _argument_text(self) -> str:
        if not self.fmt.name.endswith("-file"):
            return self.fmt.argument
        try:
            return Path(self.fmt.argument).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InvalidInput(self.fmt.name, self.fmt.argument, reason) from None

    @property
    def says_when_empty(self) -> bool:
        """Tables say "No resources found" (on stderr); scripts' formats print what an
        empty list is (``{"items": []}``, or the template over it)."""
        return self.output in _TABLES or self.columns is not None

    def matches(self, record: "ServiceRecord") -> bool:
        return self.selector is None or self.selector.matches(record.service.labels)

    def select(self, records: "Sequence[ServiceRecord]") -> list["ServiceRecord"]:
        chosen = [r for r in records if self.matches(r)]
        if self.sort is None:
            return chosen
        from cli.template import sort_key

        path = self.sort
        keyed = [(sort_key(path.find(service_object(r))), r) for r in chosen]
        if keyed and all(key == (0, 0) for key, _ in keyed):
            raise InvalidInput(
                "--sort-by", path.source, "no service has a value at this path (see -o json)"
            )
        keyed.sort(key=lambda pair: pair[0])  # stable: ties keep the registry's order
        return [record for _, record in keyed]

    # -- one list --------------------------------------------------------------------------

    @property
    def shows_endpoints(self) -> bool:
        """Tables (not custom columns) show each service's ENDPOINTS, ready/total."""
        return self.output in _TABLES and self.columns is None

    def header(self) -> list[str]:
        if self.columns is not None:
            return [column.header for column in self.columns]
        header = columns(wide=self.output is Output.wide, all_namespaces=self.all_namespaces)
        if self.statuses is not None:
            header.insert(header.index("AGE"), "ENDPOINTS")
        return [*header, "LABELS"] if self.show_labels else header

    def row(
        self,
        record: "ServiceRecord",
        now: "datetime | None" = None,
        trust: "Trust | None" = None,
    ) -> list[str]:
        if self.columns is not None:
            obj = service_object(record, trust)
            return [column.cell(obj) for column in self.columns]
        row = service_row(
            record,
            wide=self.output is Output.wide,
            all_namespaces=self.all_namespaces,
            now=now,
            trust=trust,
        )
        if self.statuses is not None:
            age = columns(wide=False, all_namespaces=self.all_namespaces).index("AGE")
            row.insert(age, self.statuses.get(record.key, "<unknown>"))
        return [*row, labels_cell(record.service)] if self.show_labels else row

    def table(self, header: list[str], rows: list[list[str]]) -> str:
        if self.no_headers:  # widths from the rows alone, as kubectl's
            table = Table([""] * len(header), rows)
            return "\n".join(table.line(row) for row in rows)
        return Table(header, rows).render(rows)

    def print(
        self,
        records: "Sequence[ServiceRecord]",
        *,
        single: bool,
        now: "datetime | None" = None,
        trust: "Trust | None" = None,
    ) -> None:
        if self.output in _TABLES or self.columns is not None:
            rows = [self.row(r, now, trust) for r in records]
            text = self.table(self.header(), rows)
            if text:
                print(text)
        elif self.output is Output.name:
            for record in records:
                print(f"service/{record.service.name}")
        else:
            obj = service_object(records[0], trust) if single else list_object(records, trust)
            if self.template is not None:
                sys.stdout.write(self.template.render(obj))  # no newline added, as kubectl
                sys.stdout.flush()
            else:
                print(to_json(obj) if self.output is Output.json else to_yaml(obj))


def _watch(
    conn: Connection,
    namespace: str | None,
    name: str | None,
    view: View,
    trust: "Trust | None",
) -> None:
    async def run() -> None:
        async with await conn.open(keep_reconnecting=True) as registry:
            printer = _WatchPrinter(view, trust)
            if not view.shows_endpoints:
                async for item in registry.watch(namespace, name):
                    printer.show(item)
                return
            async with registry.follow_endpoints(namespace, name) as follower:
                async for found in follower:
                    printer.show_endpoints(found)

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

    @property
    def tabular(self) -> bool:
        return self.view.output in _TABLES or self.view.columns is not None

    def show(self, item: "Snapshot | Change") -> None:
        from registry.services.watch import Snapshot

        if isinstance(item, Snapshot):
            changes = [("ADDED", record) for record in self.view.select(item.records)]
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
            changes = [(kind, item.record)]
        for kind, record in changes:
            if kind == "DELETED":
                self.shown.discard(record.key)
            else:
                self.shown.add(record.key)
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
