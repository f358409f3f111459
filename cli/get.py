"""``skyctl get service``: one service, a namespace, every namespace, the past, or a watch;
filtered, sorted and printed the ways ``kubectl get`` offers, so scripts carry over."""

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import (
    Format,
    NamespaceOpt,
    Output,
    format_option,
    no_headers_option,
    output_option,
    sort_by_option,
    watch_option,
)
from cli.parse import parse_name, parse_service_ref
from cli.proof import TrustOpt, load_trust
from cli.streams import interleaved
from cli.terminal import safe
from cli.verbs import register, verb_app
from cli.views import TABLE, ServiceListing, WatchPrinter
from registry.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.discovery.follower import Discovered, EndpointsChanged
    from registry.log.stored import StoredMessage
    from registry.services.history import PastState
    from registry.services.projection import ServiceRecord
    from registry.services.status import StatusFeed

__all__ = ["get_app"]

get_app = verb_app("Display one or many resources.")


@connection_options
def get_service(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME|TYPE/NAME]...",
            help="Service names (web, or svc/web); all services if omitted.",
            show_default=False,
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
    no_headers: Annotated[bool, no_headers_option()] = False,
    sort_by: Annotated[str | None, sort_by_option(".spec.ports[0].port")] = None,
    watch: Annotated[bool, watch_option()] = False,
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
    wanted = [parse_service_ref(n) for n in names or []]
    name = wanted[0] if len(wanted) == 1 else None
    if wanted:
        if all_namespaces:
            raise InvalidInput("name", wanted[0], "a name cannot be combined with --all-namespaces")
        if selector is not None:
            raise InvalidInput(
                "label selector", selector, "a selector cannot be combined with a NAME"
            )
        if len(wanted) > 1 and (watch or at is not None):
            raise InvalidInput(
                "name", wanted[1], "--watch and --at show one service, or a namespace"
            )
    # Every flag is checked before the server is asked anything: a bad template costs
    # no round trip and writes nothing.
    trust = load_trust(trust_file)
    view = ServiceListing(
        output, selector, show_labels, no_headers, sort_by, all_namespaces, trust=trust
    )
    scope = None if all_namespaces else namespace
    if at is not None:
        if watch:
            raise InvalidInput(
                "time", at, "--at shows the past; it cannot be combined with --watch"
            )
        _get_at(conn, at, scope, name, view)
        return
    if watch:
        _watch(conn, scope, name, view)
        return

    missing: list[NotFound] = []

    async def get() -> list["ServiceRecord"]:
        async with await conn.open() as registry:
            records = view.select(await read(registry))
            if view.shows_proof:  # where each signed event stands in its chain
                await registry.prover(trust).place(records)
            return records

    async def named(registry: "Registry") -> list["ServiceRecord"]:
        """The services named, in the order given; those not found are told after."""
        records = []
        for each in wanted:
            try:
                records.append(await registry.get(namespace, each))
            except NotFound as exc:
                if len(wanted) == 1:
                    raise
                missing.append(exc)
        return records

    async def read(registry: "Registry") -> list["ServiceRecord"]:
        if not view.shows_endpoints:
            if wanted:
                return await named(registry)
            return await registry.list(scope)
        if wanted:  # named services: only the tasks each one's selector picks
            found = [
                (record, await registry.endpoints(namespace, record.service.name, record=record))
                for record in await named(registry)
            ]
        else:
            found = [(f.record, f.endpoints) for f in await registry.list_endpoints(scope)]
        view.endpoints = {record.key: endpoints for record, endpoints in found}
        return [record for record, _ in found]

    records = run_command(get())
    if missing:
        if records:
            view.print(records, single=False)
        for failure in missing[:-1]:
            print(f"error: {safe(str(failure))}", file=sys.stderr)
        raise missing[-1]
    if not records and view.says_when_empty:
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    view.print(records, single=name is not None)


def _get_at(
    conn: Connection,
    at: str,
    namespace: str | None,
    name: str | None,
    view: "ServiceListing",
) -> None:
    from registry.services.when import parse_when

    when = parse_when(at)

    async def read() -> tuple["PastState", list["ServiceRecord"]]:
        async with await conn.open() as registry:
            past = await registry.at(when, namespace, name)
            records = view.select(past.projection.select())
            if view.shows_proof:  # the log is append-only: a place then is its place now
                await registry.prover(view.trust).place(records)
            return past, records

    past, records = run_command(read())
    if name is not None and not past.projection.services:
        raise NotFound(namespace or "default", name)
    if not records and view.says_when_empty:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(
            f"No resources found in {where} at {when} (log sequence {past.seq}).", file=sys.stderr
        )
        return
    # AGE as it read then, so the table looks as it did at that moment.
    view.now = past.moment
    view.print(records, single=name is not None)


def _watch(
    conn: Connection,
    namespace: str | None,
    name: str | None,
    view: ServiceListing,
) -> None:
    from registry.discovery.follower import Discovered

    async def run() -> None:
        from registry.log.stored import StoredMessage

        async with await conn.open(keep_reconnecting=True) as registry:
            # Where each signed event stands, looked up as it is shown.
            place = registry.prover(view.trust).place if view.shows_proof else None
            # Every format shows a service's endpoints changing (ENDPOINTS in tables,
            # status.endpoints in objects), and its status (external IPs), which is on
            # subjects of its own: both followed beside the services.
            async with (
                registry.follow_statuses(namespace, name) as reports,
                registry.follow_endpoints(namespace, name) as follower,
            ):
                printer = _WatchPrinter(view, reports)
                async with interleaved(follower, reports) as items:
                    async for item in items:
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

    view.endpoints = {}
    view.objects_carry_endpoints = True
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends, successfully
        run_command(run())


class _WatchPrinter(WatchPrinter["ServiceRecord"]):
    """A service watch: each service with the status last reported for it, and a MODIFIED
    line when only its endpoints or its status changed."""

    def __init__(self, view: ServiceListing, reports: "StatusFeed") -> None:
        super().__init__(view)
        self.services = view
        self.reports = reports

    def show_status(self, message: "StoredMessage") -> None:
        """A controller's report: a MODIFIED line for the service it is about, if shown."""
        _, namespace, name = message.subject.rsplit(".", 2)
        record = self.shown.get((namespace, name))
        if record is not None:
            self.change("MODIFIED", record)

    def change(self, kind: str, item: "ServiceRecord") -> None:
        super().change(kind, self.reports.attach(item))

    def show_endpoints(self, item: "Discovered | EndpointsChanged") -> None:
        """A service's change, or its endpoints changing alone: a MODIFIED line too."""
        from registry.discovery.follower import Discovered

        endpoints = self.services.endpoints
        assert endpoints is not None
        if isinstance(item, Discovered):
            endpoints.update((s.key, s.endpoints) for s in item.services)
            self.snapshot([self.reports.attach(s.record) for s in item.services])
            return
        record, now = item.service.record, item.service.endpoints
        before = endpoints.get(record.key)
        endpoints[record.key] = now
        if item.change is not None:
            self.change(item.change.kind, item.change.record)
        elif now != before:
            self.change("MODIFIED", record)


register(get_app, get_service)


@connection_options
def get_namespaces(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...",
            help="Namespaces; all that are in use if omitted.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Output, output_option(Output.table, Output.json, Output.yaml, Output.name)
    ] = Output.table,
    no_headers: Annotated[bool, no_headers_option()] = False,
    *,
    conn: Connection,
) -> None:
    """List the namespaces in use.

    Those holding a live service or a live task: a namespace is made by using it, and
    ends when nothing lives in it. AGE is that of the oldest of them.

    Example:  skyctl get namespaces
    """
    from datetime import UTC, datetime

    from cli.render import Table, human_age, short_time, to_json, to_yaml

    wanted = [parse_name(n.removeprefix("namespace/"), "namespace") for n in names or []]

    async def read() -> dict[str, datetime]:
        oldest: dict[str, datetime] = {}
        async with await conn.open() as registry:
            born = [(r.service.namespace, r.created) for r in await registry.list(None)]
            born += [(t.namespace, t.since) for t in await registry.tasks(None)]
        for namespace, since in born:
            oldest[namespace] = min(since, oldest.get(namespace, since))
        return oldest

    oldest = run_command(read())
    for name in wanted:
        if name not in oldest:
            from cli.errors import fail

            fail(f'namespace "{name}" not found (no live service or task in it)', 1)
    chosen = sorted(wanted or oldest)
    if not chosen:
        print("No resources found", file=sys.stderr)
        return
    if output is Output.name:
        print("\n".join(f"namespace/{n}" for n in chosen))
        return
    if output in (Output.json, Output.yaml):
        items = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": n, "creationTimestamp": short_time(oldest[n])},
                "status": {"phase": "Active"},
            }
            for n in chosen
        ]
        obj = items[0] if len(wanted) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
        print(to_json(obj) if output is Output.json else to_yaml(obj))
        return
    now = datetime.now(UTC)
    rows = [[safe(n), "Active", human_age(oldest[n], now)] for n in chosen]
    header = ["NAME", "STATUS", "AGE"]
    if no_headers:  # widths from the rows alone, as kubectl's
        print("\n".join(Table([""] * 3, rows).line(r) for r in rows))
    else:
        print(Table(header, rows).render(rows))


register(get_app, get_namespaces, "namespaces")
