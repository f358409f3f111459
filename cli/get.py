"""``skyctl get service``: one service, a namespace, every namespace, the past, or a watch."""

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.parse import parse_name
from cli.proof import TrustOpt, load_trust
from cli.render import (
    COLUMNS,
    WIDE_COLUMNS,
    Table,
    list_object,
    service_object,
    service_row,
    to_json,
    to_yaml,
)
from cli.verbs import NamespaceOpt, Output, OutputOpt, register, verb_app
from registry.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from datetime import datetime

    from registry.history import PastState
    from registry.projection import Change, ServiceRecord
    from registry.proof import Trust
    from registry.watch import Snapshot

__all__ = ["get_app", "print_records"]

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
    output: OutputOpt = Output.table,
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
    scope = None if all_namespaces else namespace
    trust = load_trust(trust_file)
    if at is not None:
        if watch:
            raise InvalidInput(
                "time", at, "--at shows the past; it cannot be combined with --watch"
            )
        _get_at(conn, at, scope, name, output, trust)
        return
    if watch:
        _watch(conn, scope, name, output, trust)
        return

    async def get() -> list["ServiceRecord"]:
        async with await conn.open() as registry:
            if name is not None:
                return [await registry.get(namespace, name)]
            return await registry.list(scope)

    records = asyncio.run(get())
    if not records and output in (Output.table, Output.wide):
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    print_records(records, output, single=name is not None, trust=trust)


def _get_at(
    conn: Connection,
    at: str,
    namespace: str | None,
    name: str | None,
    output: Output,
    trust: "Trust | None",
) -> None:
    from registry.when import parse_when

    when = parse_when(at)

    async def read() -> "PastState":
        async with await conn.open() as registry:
            return await registry.at(when, namespace, name)

    past = asyncio.run(read())
    records = past.projection.select()
    if name is not None and not records:
        raise NotFound(namespace or "default", name)
    if not records and output in (Output.table, Output.wide):
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(
            f"No resources found in {where} at {when} (log sequence {past.seq}).", file=sys.stderr
        )
        return
    # AGE as it read then, so the table looks as it did at that moment.
    print_records(records, output, single=name is not None, now=past.moment, trust=trust)


def print_records(
    records: "Sequence[ServiceRecord]",
    output: Output,
    *,
    single: bool,
    now: "datetime | None" = None,
    trust: "Trust | None" = None,
) -> None:
    if output in (Output.table, Output.wide):
        wide = output is Output.wide
        rows = [service_row(r, wide=wide, now=now, trust=trust) for r in records]
        print(Table(WIDE_COLUMNS if wide else COLUMNS, rows).render(rows))
    elif output is Output.name:
        for record in records:
            print(f"service/{record.service.name}")
    else:
        obj = service_object(records[0], trust) if single else list_object(records, trust)
        print(to_json(obj) if output is Output.json else to_yaml(obj))


def _watch(
    conn: Connection,
    namespace: str | None,
    name: str | None,
    output: Output,
    trust: "Trust | None",
) -> None:
    async def run() -> None:
        async with await conn.open(keep_reconnecting=True) as registry:
            printer = _WatchPrinter(output, trust)
            async for item in registry.watch(namespace, name):
                printer.show(item)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends, successfully
        asyncio.run(run())


class _WatchPrinter:
    """Prints the snapshot as ADDED rows, then each change, flushing every line."""

    def __init__(self, output: Output, trust: "Trust | None" = None) -> None:
        self.output = output
        self.trust = trust
        self.table: Table | None = None

    def show(self, item: "Snapshot | Change") -> None:
        from registry.watch import Snapshot

        if isinstance(item, Snapshot):
            changes = [("ADDED", record) for record in item.records]
            if self.output in (Output.table, Output.wide):
                wide = self.output is Output.wide
                rows = [["ADDED", *service_row(r, wide=wide, trust=self.trust)] for _, r in changes]
                header = ["EVENT", *(WIDE_COLUMNS if wide else COLUMNS)]
                self.table = Table(header, rows, min_widths=[len("MODIFIED")])
                print(self.table.line(self.table.header), flush=True)
        else:
            changes = [(item.kind, item.record)]
        for kind, record in changes:
            self._line(kind, record)

    def _line(self, kind: str, record: "ServiceRecord") -> None:
        output = self.output
        trust = self.trust
        if output in (Output.table, Output.wide) and self.table is not None:
            row = service_row(record, wide=output is Output.wide, trust=trust)
            text = self.table.line([kind, *row])
        elif output is Output.name:
            text = f"{kind}\tservice/{record.service.name}"
        elif output is Output.json:
            obj = {"type": kind, "object": service_object(record, trust)}
            text = to_json(obj, compact=True)
        else:
            text = "---\n" + to_yaml({"type": kind, "object": service_object(record, trust)})
        print(text, flush=True)


register(get_app, get_service)
