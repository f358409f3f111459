"""``skyctl get endpoints [NAME]``: each service's live endpoints, as kubectl shows them,
printed and watched as ``get service`` is (``cli.views``).

The table is kubectl's: up to three ready ``address:port`` pairs, then ``+ N more...``;
``-o wide`` gives one row per address (ready or not, with its cluster and task);
``-o json|yaml`` is Kubernetes' Endpoints object, one subset per cluster, with ready and
not-ready addresses apart, labelled as its service is (so ``-l`` picks them, as kubectl's).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import (
    Format,
    NamespaceOpt,
    Output,
    all_namespaces_option,
    format_option,
    label_selector_option,
    no_headers_option,
    sort_by_option,
    watch_option,
)
from cli.parse import parse_name
from cli.render import API_VERSION, endpoints_cell, endpoints_subsets, human_age, lease_cell
from cli.serviceviews import ENDPOINT_WIDE_COLUMNS, wide_rows
from cli.terminal import safe
from cli.views import TABLE, Listing, WatchPrinter
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.discovery.crosssite import SiteTasks
    from registry.discovery.endpoints import Endpoints
    from registry.discovery.follower import ServiceEndpoints
    from registry.discovery.served import Served
    from registry.services.when import When
    from registry.sites.links import SiteReport

__all__ = [
    "AtSite",
    "EndpointsListing",
    "SitesListing",
    "endpoints_object",
    "get_endpoints",
    "site_rows",
]

# kubectl's: NAMESPACE only with -A, first.
COLUMNS = ("NAME", "ENDPOINTS", "AGE")
_FORMATS = (Output.table, Output.wide, Output.json, Output.yaml, Output.name)


@connection_options
def get_endpoints(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="Service name; every service if omitted.", show_default=False
        ),
    ] = None,
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, all_namespaces_option("Endpoints of every namespace.")] = False,
    selector: Annotated[str | None, label_selector_option("services' endpoints")] = None,
    output: Annotated[Format, format_option(*_FORMATS)] = TABLE,
    no_headers: Annotated[bool, no_headers_option()] = False,
    sort_by: Annotated[str | None, sort_by_option("{.subsets[0].addresses[0].ip}")] = None,
    watch: Annotated[bool, watch_option()] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="Who served the service at a time (2026-11-25T10:00:00Z), a duration ago "
            "(90m, 2d) or a log sequence (1234), from the membership history (skyctl "
            "record), next to the service as it was then. Needs a NAME.",
        ),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            metavar="SITE",
            help="Asked of the hub: the endpoints at that site only, from the hub's copy "
            "of the site's membership history, by the site's lease (stale: the last it "
            "reported, said so; revoked: none); with NAME and --at, who served there then; "
            "with -w, that site's rows as they change. Without --site, a listing at a hub "
            "(and its -w) shows every site's, with SITE and LEASE.",
            show_default=False,
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Show the live endpoints of one service, or of every service in a namespace.

    An endpoint is a live task the service's selector picks, as address:targetPort for
    each of its ports, grouped by cluster; ENDPOINTS lists the ready ones. With -w, a
    service's endpoints are printed again (MODIFIED) whenever a task joins, leaves or
    turns ready, and ADDED or DELETED with the service. At a hub, -w follows each site's
    rows too: MODIFIED when its tasks change or its lease turns stale, DELETED when the
    lease is revoked, ADDED when it is live again.

    Example:  skyctl get endpoints web -n shop

              skyctl get endpoints -n shop -w

              skyctl get endpoints -n shop -w --site east

              skyctl get endpoints web -n shop --at 2026-12-05T14:02:00Z
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
    # Every flag is checked before the server is asked anything.
    view = EndpointsListing(output, selector, no_headers, sort_by, all_namespaces)
    scope = None if all_namespaces else namespace
    if site is not None:
        from registry.sites.model import check_site_name

        check_site_name(site)
        if name is None and at is not None:
            raise InvalidInput("site", site, "--site --at needs a NAME (for now)")
        if at is None and name is not None and not watch:
            from datetime import UTC, datetime

            from registry.services.when import AtTime

            _served_at(conn, namespace, name, AtTime(datetime.now(UTC)), view, site, now=True)
            return
    if at is not None:
        from registry.services.when import parse_when

        when = parse_when(at)
        if name is None or watch:
            why = "--at needs a service NAME" if name is None else "--at cannot be combined with -w"
            raise InvalidInput("time", at, why)
        _served_at(conn, namespace, name, when, view, site)
        return
    if watch:
        _watch(conn, scope, name, view, site)
        return

    async def read() -> tuple[list[ServiceEndpoints], list[SiteTasks]]:
        from registry.discovery.follower import ServiceEndpoints

        async with await conn.open() as registry:
            if name is None:
                found = await registry.list_endpoints(scope)
                return found, await _read_sites(registry, site)
            record = await registry.get(namespace, name)
            return [ServiceEndpoints(record, await registry.endpoints(namespace, name))], []

    listed, sites = run_command(read())
    if site is not None and not sites:
        _no_such_site(site)
    found = view.select(listed)
    if sites:
        _print_with_sites(found, sites, view, only_sites=site is not None)
        return
    if not found and view.says_when_empty:
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    view.print(found, single=name is not None)


def _print_with_sites(
    found: list[ServiceEndpoints],
    sites: list[SiteTasks],
    view: EndpointsListing,
    *,
    only_sites: bool,
) -> None:
    """The hub's endpoints (unless ``only_sites``) and each site's, a row per service and
    site, by each site's lease (``registry.sites.model.lease_warning``: stale rows marked
    with their age, a revoked site's absent), what the lease says on stderr first."""
    for one in sites:
        _warn(one)
    rows = site_rows(found, sites, only_sites=only_sites)
    listing = SitesListing(view)
    if not rows and listing.says_when_empty:
        print("No resources found.", file=sys.stderr)
        return
    listing.print(rows, single=False)


async def _read_sites(registry: Registry, site: str | None) -> list[SiteTasks]:
    """The sites a listing (or a watch) at this server shows: ``site`` only if named
    (a refusal is then the answer), else every site the user may list."""
    if site is not None:
        return await registry.site_tasks((site,))
    # Listing the sites takes stream listing, which a tenant's role does not give: their
    # listing is the hub's own endpoints, as before sites.
    return await registry.readable_sites()


def _no_such_site(site: str) -> NoReturn:
    from cli.errors import fail

    fail(f'site "{site}" not found (no skyctl site init for it at this hub)', 1)


def _warn(site: SiteTasks) -> None:
    """What the site's lease says of its rows (stale, revoked), on stderr."""
    if site.warning is not None:
        print(safe(f"warning: {site.warning}"), file=sys.stderr, flush=True)


def site_rows(
    found: Sequence[ServiceEndpoints], sites: Sequence[SiteTasks], *, only_sites: bool
) -> list[AtSite]:
    """The rows of ``get endpoints`` at a hub: for each service in ``found`` (in its
    order), the hub's own endpoints (unless ``only_sites``), then each site's by its
    lease (``registry.discovery.crosssite.site_endpoints``); a revoked site has none."""
    from registry.discovery.crosssite import site_endpoints
    from registry.discovery.follower import ServiceEndpoints

    served = [one for one in sites if one.serves]
    rows: list[AtSite] = []
    for item in found:
        if not only_sites:
            rows.append(AtSite(item, None, "local", None))
        rows += [
            AtSite(
                ServiceEndpoints(item.record, site_endpoints(item.endpoints, one)),
                one.site,
                one.state,
                one.silent_s,
            )
            for one in served
        ]
    return rows


def _served_at(
    conn: Connection,
    namespace: str,
    name: str,
    when: When,
    view: EndpointsListing,
    site: str | None = None,
    *,
    now: bool = False,
) -> None:
    """Who served ``namespace/name`` at ``when``, after the service as it was then; what
    the history cannot vouch for on stderr."""
    from cli.render import service_object
    from cli.views import TABLES
    from registry.discovery.follower import ServiceEndpoints

    async def read() -> tuple[Served, SiteReport | None]:
        async with await conn.open() as registry:
            served = await registry.served_at(namespace, name, when, site=site)
            if site is None:
                return served, None
        from registry.sites.links import read_sites, session

        async with session(conn.server, conn.credentials()) as at_hub:
            reports = await read_sites(at_hub, (site,))
        if not reports:  # (its history is here, its record gone: nothing vouches for it)
            from registry.errors import ServerError

            raise ServerError(f"site {site} has no record at this hub (skyctl site init)")
        return served, reports[0]

    served, report = run_command(read())
    for caveat in served.caveats:
        print(safe(f"warning: {caveat}"), file=sys.stderr, flush=True)
    if report is not None:
        served = _by_the_lease(served, report, now=now)
    found = ServiceEndpoints(served.record, served.endpoints)
    moment = served.moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    where = f" at site {site}" if site else ""
    if view.tabular:
        service = served.record.service
        selector = ",".join(f"{k}={v}" for k, v in service.selector.items()) or "<none>"
        ports = ",".join(str(p) for p in service.ports) or "<none>"
        if view.output in TABLES:  # (custom columns print only their columns)
            print(
                safe(
                    f"service/{service.name} at {moment}{where} (revision "
                    f"{served.record.seq}): "
                    f"{service.type.value}, selector {selector}, ports {ports}"
                )
            )
        view.print([found], single=True)
        return
    if view.output is Output.name:
        view.print([found], single=True)
        return
    # JSON, YAML, JSONPath: the service then and its endpoints then, as one List.
    view.print_object(
        {
            "apiVersion": API_VERSION,
            "kind": "List",
            "metadata": {
                "annotations": {
                    "skyflow.io/at": moment,
                    **({"skyflow.io/site": site} if site else {}),
                }
            },
            "items": [service_object(served.record), view.object(found)],
        }
    )


def _watch(
    conn: Connection,
    namespace: str | None,
    name: str | None,
    view: EndpointsListing,
    site: str | None,
) -> None:
    """``get endpoints -w``: the hub's own endpoints, as ever; at a hub (a server with
    sites) listing without a NAME, or with ``--site``, the sites' rows too
    (``_SitesWatch``), as ``get endpoints`` lists them."""
    from registry.discovery.follower import Discovered

    printer = WatchPrinter(view)

    async def run() -> bool:
        """False if ``site`` is no site of this server's."""
        async with await conn.open(keep_reconnecting=True) as registry:
            if name is None or site is not None:
                sites = await _read_sites(registry, site)
                if site is not None and not sites:
                    return False
                if sites:
                    await _SitesWatch(view, sites, only_sites=site is not None).run(
                        registry, namespace, name, site
                    )
                    return True
            async with registry.follow_endpoints(namespace, name) as follower:
                async for item in follower:
                    if isinstance(item, Discovered):
                        printer.snapshot(item.services)
                        continue
                    shown = printer.shown.get(item.service.key)
                    # A change to the service that leaves its Endpoints object as it was
                    # (a port's name, its type) is no change to them.
                    if (
                        item.kind != "MODIFIED"
                        or shown is None
                        or view.object(shown) != view.object(item.service)
                    ):
                        printer.change(item.kind, item.service)
        return True

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends, successfully
        if not run_command(run()) and site is not None:
            _no_such_site(site)


class _SitesWatch:
    """``get endpoints -w`` at a hub: first the rows ``get endpoints`` lists (``site_rows``,
    with SITE and LEASE), then a row for each change to one: the hub's own endpoints as
    they are followed, each site's as its tasks change (followed) or its lease does (read
    every second: ``Registry.site_feed``, as the Resolver reads them). A row is printed
    again when its endpoints or its site's lease state change (not as a stale site's age
    grows); a site revoked is its rows DELETED, shown with no endpoints and LEASE
    ``revoked`` (the listing leaves them out), and ADDED again once the site is live.
    What each lease change says goes to stderr, as the listing's warnings do."""

    def __init__(self, view: EndpointsListing, sites: list[SiteTasks], *, only_sites: bool) -> None:
        self.view = view
        self.listing = SitesListing(view)
        # Selected already for the first rows; a change moving a service into or out of
        # the selection is then ADDED or DELETED, as in any watch with -l.
        self.listing.selector = view.selector
        self.printer = WatchPrinter(self.listing)
        self.only_sites = only_sites
        self.sites = sites
        self.services: dict[Hashable, ServiceEndpoints] = {}
        self.rows: dict[Hashable, AtSite] = {}  # every row as last printed (or not selected)
        self.started = False
        self.unread = False  # the last read of the sites failed

    async def run(
        self, registry: Registry, namespace: str | None, name: str | None, site: str | None
    ) -> None:
        import asyncio

        from cli.streams import interleaved
        from registry.discovery.follower import Discovered

        names = (site,) if site is not None else ()
        stopped = _stop_on_sigterm()
        try:
            async with (
                registry.follow_endpoints(namespace, name) as follower,
                interleaved(follower, _every_read_of_sites(registry, names)) as items,
            ):
                async for item in items:
                    if isinstance(item, Discovered):
                        self.discovered(item.services)
                    elif isinstance(item, list):
                        self.read(item)
                    elif isinstance(item, Exception):
                        self.failed(item)
                    elif item.kind == "DELETED":
                        self.services.pop(item.service.key, None)
                        self.show()
                    else:
                        self.services[item.service.key] = item.service
                        self.show()
        except asyncio.CancelledError:
            if not stopped():
                raise
        finally:
            stopped.remove()

    def discovered(self, services: list[ServiceEndpoints]) -> None:
        self.services = {item.key: item for item in services}
        if self.started:  # (read afresh after a gap: what changed meanwhile)
            self.show()
            return
        self.started = True
        for one in self.sites:
            _warn(one)
        first = site_rows(self.view.select(services), self.sites, only_sites=self.only_sites)
        self.printer.snapshot(first)
        self.rows = {self.listing.key(row): row for row in self.current()}

    def read(self, sites: list[SiteTasks]) -> None:
        """A new read of the sites: what a lease change says, then the rows it changed."""
        self.unread = False
        before = {one.site: one.state for one in self.sites}
        for one in sites:
            if before.get(one.site) != one.state:
                _warn(one)
        self.sites = sites
        if self.started:
            self.show()

    def failed(self, error: Exception) -> None:
        if not self.unread:
            self.unread = True
            print(
                safe(f"warning: reading the sites failed (their rows stay as last read): {error}"),
                file=sys.stderr,
                flush=True,
            )

    def current(self) -> list[AtSite]:
        return site_rows(list(self.services.values()), self.sites, only_sites=self.only_sites)

    def shown_as(self, row: AtSite) -> tuple[str, dict[str, Any]]:
        """What a change to ``row`` must change to be printed: its lease state and its
        Endpoints object (not a stale site's age, nor a port's name, as for the hub's)."""
        return row.state, self.view.object(row.found)

    def show(self) -> None:
        """A line for each row that came, went or changed since last shown."""
        if not self.started:
            return
        rows = {self.listing.key(row): row for row in self.current()}
        for key, row in rows.items():
            was = self.rows.get(key)
            if was is None:
                self.printer.change("ADDED", row)
            elif self.shown_as(was) != self.shown_as(row):
                self.printer.change("MODIFIED", row)
        revoked = {one.site: one for one in self.sites if not one.serves}
        for key, was in self.rows.items():
            if key in rows:
                continue
            site = revoked.get(was.site) if was.site is not None else None
            service = self.services.get(was.found.key)
            if site is not None and service is not None:
                # Revoked: the row as the lease leaves it, no endpoints.
                was = _revoked_row(service, site)
            self.printer.change("DELETED", was)
        self.rows = rows


def _revoked_row(service: ServiceEndpoints, site: SiteTasks) -> AtSite:
    """A revoked site's row for ``service``, as a watch's DELETED shows it: no endpoints
    (``site_endpoints`` gives a revoked site none), LEASE ``revoked``."""
    from registry.discovery.crosssite import site_endpoints
    from registry.discovery.follower import ServiceEndpoints

    found = ServiceEndpoints(service.record, site_endpoints(service.endpoints, site))
    return AtSite(found, site.site, site.state, site.silent_s)


async def _every_read_of_sites(
    registry: Registry, names: tuple[str, ...]
) -> AsyncIterator[Sequence[SiteTasks] | Exception]:
    """The sites as the Resolver reads them (``Registry.site_feed``, ``site_reads``): read
    again as soon as a site's tasks change, and every second regardless
    (``SITES_EVERY_S``: a lease moves with silence); each read, or why it failed (the
    watch goes on, and says so)."""
    from registry.discovery.resolver import SITES_EVERY_S, site_reads

    feed = registry.site_feed(names)
    try:
        async for found in site_reads(feed, SITES_EVERY_S):
            yield found
    finally:
        await feed.close()


class _Stopped:
    """Whether SIGTERM cancelled the watch (``_stop_on_sigterm``)."""

    def __init__(self) -> None:
        self.signalled = False
        self.remove: Callable[[], None] = lambda: None

    def __call__(self) -> bool:
        return self.signalled


def _stop_on_sigterm() -> _Stopped:
    """SIGTERM cancels the running watch, which then ends as after Ctrl-C: its connection
    closed, nothing printed, exit 0 (Python's default would end the process at once)."""
    import asyncio
    import signal
    import threading

    stopped = _Stopped()
    if threading.current_thread() is not threading.main_thread():
        return stopped  # (only the main thread may handle signals)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        stopped.signalled = True
        task.cancel()

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGTERM)

    loop.add_signal_handler(signal.SIGTERM, stop)
    stopped.remove = remove
    return stopped


class EndpointsListing(Listing["ServiceEndpoints"]):
    """Endpoints as ``get endpoints`` prints them: kubectl's table, a row per address with
    ``-o wide``, the object of ``endpoints_object``."""

    kind = "endpoints"
    noun = "Endpoints object"

    def object(self, item: ServiceEndpoints) -> dict[str, Any]:
        return endpoints_object(item.endpoints, item.record.service.labels)

    def name(self, item: ServiceEndpoints) -> str:
        return item.endpoints.name

    def labels(self, item: ServiceEndpoints) -> Mapping[str, str]:
        return item.record.service.labels

    def key(self, item: ServiceEndpoints) -> Hashable:
        return item.key

    def namespace(self, item: ServiceEndpoints) -> str:
        return item.endpoints.namespace

    def table_header(self) -> list[str]:
        return list(ENDPOINT_WIDE_COLUMNS if self.output is Output.wide else COLUMNS)

    def table_rows(self, item: ServiceEndpoints) -> list[list[str]]:
        if self.output is Output.wide:
            return wide_rows(item.endpoints)
        return [[item.endpoints.name, endpoints_cell(item.endpoints), _age(item)]]


def _age(found: ServiceEndpoints) -> str:
    return human_age(found.record.created)


def endpoints_object(endpoints: Endpoints, labels: Mapping[str, str]) -> dict[str, Any]:
    """Kubernetes' Endpoints, labelled as its service: a subset per cluster (``cluster``
    added), ready addresses and not-ready ones apart, each naming its task (``targetRef``)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoints",
        "metadata": {
            "name": endpoints.name,
            "namespace": endpoints.namespace,
            "labels": dict(labels),
        },
        "subsets": endpoints_subsets(endpoints),
    }


def _by_the_lease(served: Served, report: SiteReport, *, now: bool) -> Served:
    """What the hub may say of a site's endpoints by its lease: all it has while the site
    is live; what the site last reported, said to be stale, once silent past the lease;
    nothing (revoke-after) once silent past the grace. The past (``--at``) is history,
    served whatever the lease, but a site the hub cannot hear may not have told it all."""
    import dataclasses

    from registry.discovery.endpoints import endpoints_for
    from registry.sites.model import lease_warning

    state = report.state
    warning = lease_warning(report.site, state, report.unheard_s, now=now)
    if warning is None:
        return served
    print(safe(f"warning: {warning}"), file=sys.stderr, flush=True)
    if now and state == "revoked":
        return dataclasses.replace(served, endpoints=endpoints_for(served.record.service, []))
    return served


HUB_SITE = "<hub>"  # the SITE of the hub's own endpoints


@dataclass(frozen=True)
class AtSite:
    """A service's endpoints at one site (``site`` None: the hub's own), with the hub's
    lease on that site."""

    found: ServiceEndpoints
    site: str | None
    state: str  # local, live, stale (revoked: a watch's DELETED row)
    silent_s: float | None

    @property
    def lease(self) -> str:
        """The LEASE cell: ``-`` for the hub's own, ``live``, ``stale(7.1s)``."""
        if self.site is None:
            return "-"
        return lease_cell(self.state, self.silent_s)


class SitesListing(Listing[AtSite]):
    """``get endpoints`` at a hub with sites: ``EndpointsListing``'s rows and objects with
    each row's SITE and LEASE (objects annotated ``skyflow.io/site``, ``-lease``,
    ``-silent-seconds``)."""

    kind = "endpoints"
    noun = "Endpoints object"

    def __init__(self, view: EndpointsListing) -> None:
        # Selected and sorted already (by service, the same at every site).
        super().__init__(view.fmt, None, view.no_headers, None, view.all_namespaces)
        self.view = view

    def object(self, item: AtSite) -> dict[str, Any]:
        obj = self.view.object(item.found)
        annotations = {"skyflow.io/site": item.site or HUB_SITE, "skyflow.io/lease": item.state}
        if item.state == "stale":
            annotations["skyflow.io/silent-seconds"] = (
                "never" if item.silent_s is None else f"{item.silent_s:.1f}"
            )
        obj["metadata"]["annotations"] = annotations
        return obj

    def name(self, item: AtSite) -> str:
        return self.view.name(item.found)

    def labels(self, item: AtSite) -> Mapping[str, str]:
        return self.view.labels(item.found)

    def key(self, item: AtSite) -> Hashable:
        return (item.site, self.view.key(item.found))

    def namespace(self, item: AtSite) -> str:
        return self.view.namespace(item.found)

    def table_header(self) -> list[str]:
        first, *rest = self.view.table_header()
        return [first, "SITE", "LEASE", *rest]

    def table_rows(self, item: AtSite) -> list[list[str]]:
        return [
            [first, item.site or HUB_SITE, item.lease, *rest]
            for first, *rest in self.view.table_rows(item.found)
        ]
