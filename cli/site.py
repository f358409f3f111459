"""``skyctl site init`` (set a site up beside its hub) and ``skyctl get sites`` (what the
hub hears of each site): sites on NATS leaf nodes, ``docs/sites.md``."""

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command, run_until_stopped
from cli.options import Output, no_headers_option, output_option
from cli.terminal import safe
from cli.verbs import verb_app

if TYPE_CHECKING:
    from registry.sites.links import HubReport, SiteReport

__all__ = ["LINK_WAIT_S", "get_sites", "site_app", "site_watch"]

# How long ``site init`` waits for the site's leaf link to the hub before setting up.
LINK_WAIT_S = 10.0

site_app = verb_app("Set up sites: leaf nodes that keep working cut off from the hub.")


@site_app.command("init")
@connection_options
def site_init(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="The site's name (a DNS label).", show_default=False),
    ],
    hub: Annotated[
        str,
        typer.Option(
            "--hub",
            metavar="URL",
            help="The hub's client URL (its leaf link is in the site's server config).",
            show_default=False,
        ),
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            metavar="POLICY",
            help="What the hub serves of this site once it cannot hear it: "
            "keep-last-known (marked stale, with its age) or revoke-after GRACE (nothing "
            "once silent GRACE).",
        ),
    ] = "revoke-after 2m",
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            metavar="DURATION",
            help="How long the hub may go without a word from the site (its sourcing "
            "heartbeats once a second) before it calls the site stale.",
        ),
    ] = "5s",
    *,
    conn: Connection,
) -> None:
    """Set up the server at --server as site NAME of the hub at --hub.

    At the site: its service log becomes a mirror of the hub's (service changes are
    made at the hub, and refused at the site), beside its own liveness and membership
    streams. At the hub: one stream sourcing the site's live tasks and one its
    membership history, under site.NAME.; their metadata records the lease and policy.
    Running it again brings the hub's record up to date. Both servers need a JetStream
    domain, and the site a leaf link to the hub (cluster/sites/); it waits up to 10 s
    for that link first.

    Example:  skyctl site init east --hub nats://127.0.0.1:4222 -S nats://127.0.0.1:4225
    """
    from events.stream import StreamSpec
    from registry.jetstream.provision import provision
    from registry.sites.links import (
        domain_of,
        init_hub_views,
        init_site_mirror,
        reaches,
        session,
    )
    from registry.sites.model import (
        DEFAULT_LEASE_S,
        Site,
        check_site_name,
        parse_duration,
        parse_policy,
        public_url,
    )

    check_site_name(name)
    chosen = parse_policy(policy)
    lease_s = parse_duration(lease, "--lease", low=2.0, high=3600.0)
    if chosen.grace_s is not None and chosen.grace_s < lease_s:
        from registry.errors import InvalidInput

        raise InvalidInput("--policy", policy, f"its grace must be at least the lease ({lease})")
    credentials = conn.credentials()
    spec = StreamSpec(replicas=conn.stream_replicas())
    recorded_hub = public_url(hub)  # (stream metadata is readable by all: no password)

    async def run() -> None:
        async with session(hub, credentials) as at_hub, session(conn.server, credentials) as here:
            hub_domain = await domain_of(at_hub, "hub")
            domain = await domain_of(here, "site")
            if domain == hub_domain:
                from registry.errors import InvalidInput

                raise InvalidInput(
                    "--server",
                    conn.server,
                    f"is in the hub's JetStream domain ({domain}): a site needs its own",
                )
            if not await reaches(here, hub_domain, wait_s=LINK_WAIT_S):
                print(
                    f"warning: site {name} does not reach the hub's JetStream (domain "
                    f"{safe(hub_domain)}) across its leaf link after {LINK_WAIT_S:g} s: set up "
                    "anyway; copies start once the link is up (JetStream retries a copy "
                    "set up meanwhile after 30 s)",
                    file=sys.stderr,
                    flush=True,
                )
            made = await init_site_mirror(here, name, hub_domain, recorded_hub, spec, lease_s)
            print(safe(made), flush=True)
        async with await conn.open_log() as log:
            for stream in await provision(log, scale=False):
                print(safe(str(stream)), flush=True)
            kept_s = (await log.membership()).retention_s  # the hub keeps as long
        site = Site(name, domain, recorded_hub, chosen, lease_s or DEFAULT_LEASE_S)
        async with session(hub, credentials) as at_hub:
            for line in await init_hub_views(at_hub, site, kept_s):
                print(safe(line), flush=True)
        print(
            f"site/{name} ready: domain {safe(domain)}, hub domain {safe(hub_domain)}, "
            f"lease {lease}, policy {chosen}",
            flush=True,
        )

    run_command(run())


@site_app.command("status")
@connection_options
def site_status(
    output: Annotated[Output, output_option(Output.table, Output.json, Output.yaml)] = Output.table,
    *,
    conn: Connection,
) -> None:
    """Say how stale this site's copy of the hub's service log is.

    The site keeps answering reads from its mirror of the hub's log while the link is
    down; this says when the mirror last heard from the hub (its heartbeats come once a
    second), so what the site answers can be judged: the link is up while the hub was
    heard within the site's lease, and the services the site serves are those of that
    moment otherwise.

    Example:  skyctl site status -S nats://127.0.0.1:4225
    """
    from registry.sites.links import read_hub, session

    async def read() -> "HubReport":
        async with session(conn.server, conn.credentials()) as here:
            return await read_hub(here)

    report = run_command(read())
    mirror = report.mirror
    if output in (Output.json, Output.yaml):
        from cli.render import to_json, to_yaml

        obj = {
            "site": mirror.site,
            "hub": {"domain": mirror.hub_domain, "url": mirror.hub_url},
            "link": "up" if report.link_up else "down",
            "silentSeconds": report.silent_s,
            "leaseSeconds": report.lease_s,
            "serviceLog": {"lastSequence": report.last_seq, "lag": report.lag},
        }
        print(to_json(obj) if output is Output.json else to_yaml(obj))
        return
    from cli.siteviews import ago

    heard = "never" if report.silent_s is None else f"{ago(report.silent_s)} ago"
    print(
        f"site/{safe(mirror.site)}: hub {safe(mirror.hub_url)} (domain {safe(mirror.hub_domain)})"
    )
    print(f"link {'up' if report.link_up else 'down'}: hub last heard {heard}")
    what = f"service log: the hub's up to sequence {report.last_seq}"
    if report.link_up:
        print(f"{what}, {report.lag} behind")
    else:
        print(f"{what}, as of {heard}: changes made at the hub since are not here yet")


@site_app.command("watch")
@connection_options
def site_watch(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Sites; all if omitted.", show_default=False),
    ] = None,
    every: Annotated[
        str,
        typer.Option("--every", metavar="DURATION", help="How often to look at each site."),
    ] = "1s",
    *,
    conn: Connection,
) -> None:
    """Watch the hub's sites, resuming its views of one whose link is back.

    Asked of the hub (--server), by someone who may update its streams (the admin).
    Prints a line when a site's link goes down or up and when its lease state changes
    (live, stale, revoked). After a cut, the hub's sourcing of a site may wait 30 s
    before it asks the site again (a request it sent while the link was down is still
    waiting for its answer): when the hub reaches the site yet still has not heard from
    it past its lease, on two looks in a row, this re-asserts the hub's views of the
    site, which then resume at once from where they stopped (nothing is copied twice).
    Runs until stopped; cluster/sites/start runs one.

    Example:  skyctl site watch
    """
    from registry.sites.model import parse_duration

    every_s = parse_duration(every, "--every", low=0.1, high=60.0)
    wanted, first = _read_sites(names, conn)

    async def run() -> None:
        from registry.errors import PermissionDenied, ServerError
        from registry.sites.keeper import Keeper, Look
        from registry.sites.links import reaches, read_sites, resume_views, session

        keeper = Keeper()
        async with session(conn.server, conn.credentials(), long_lived=True) as at_hub:
            shown = ", ".join(r.site.name for r in first) or "none yet"
            print(f"site watch: watching the sites of {safe(conn.server)} ({shown})", flush=True)
            loop = asyncio.get_running_loop()
            failing: str | None = None  # said once, not every look, while it lasts
            while True:
                try:
                    for report in await read_sites(at_hub, wanted):
                        site = report.site
                        look = Look(
                            site.name,
                            await reaches(at_hub, site.domain, wait_s=0),
                            report.state,
                            report.unheard_s,
                            site.lease_s,
                        )
                        said = keeper.look(look, loop.time())
                        for line in said.lines:
                            print(safe(line), flush=True)
                        if said.resume:
                            views = await resume_views(at_hub, site.name)
                            print(f"site {safe(site.name)}: resumed {', '.join(views)}", flush=True)
                except PermissionDenied:
                    raise  # (the admin's to run: say so and stop)
                except ServerError as exc:
                    if str(exc) != failing:
                        failing = str(exc)
                        print(f"warning: {safe(failing)}", file=sys.stderr, flush=True)
                else:
                    if failing is not None:
                        failing = None
                        print("site watch: reading the hub again", flush=True)
                await asyncio.sleep(every_s)

    run_until_stopped(run)


@connection_options
def get_sites(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Sites; all if omitted.", show_default=False),
    ] = None,
    output: Annotated[
        Output, output_option(Output.table, Output.json, Output.yaml, Output.name)
    ] = Output.table,
    no_headers: Annotated[bool, no_headers_option()] = False,
    *,
    conn: Connection,
) -> None:
    """Show each site as the hub hears it: link, lag, last word, lease state.

    Asked of the hub (--server). LINK is up while the hub has heard from the site within
    its lease; LAST-HEARD is how long ago it last did (its sourcing heartbeats once a
    second); LAG what the site holds that the hub has not received (as last reported:
    a cut link reports nothing new); NEWEST the age of the newest message the hub holds
    from it. STATE is live, stale (silent past the lease: what the hub has of it is
    old) or revoked (silent past the grace of revoke-after). Never live when unheard.

    Example:  skyctl get sites
    """
    wanted, reports = _read_sites(names, conn)
    if not reports:
        print("No resources found", file=sys.stderr)
        return
    if output is Output.name:
        print("\n".join(f"site/{r.site.name}" for r in reports))
        return
    if output in (Output.json, Output.yaml):
        from cli.render import to_json, to_yaml

        items = [_site_object(r) for r in reports]
        obj = items[0] if len(wanted) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
        print(to_json(obj) if output is Output.json else to_yaml(obj))
        return
    from cli.render import Table
    from cli.siteviews import SITE_COLUMNS, site_row

    rows = [site_row(r) for r in reports]
    header = list(SITE_COLUMNS)
    if no_headers:
        print("\n".join(Table([""] * len(header), rows).line(r) for r in rows))
    else:
        print(Table(header, rows).render(rows))
    for report in reports:
        for error in report.errors:
            print(f"warning: site {report.site.name}: {safe(error)}", file=sys.stderr)


def _read_sites(
    names: list[str] | None, conn: Connection
) -> tuple[tuple[str, ...], list["SiteReport"]]:
    """The sites named (all if none), as the hub at --server hears them; a site named
    that the hub does not source is an error naming it."""
    from registry.sites.links import read_sites, session
    from registry.sites.model import check_site_name

    wanted = tuple(check_site_name(n.removeprefix("site/")) for n in names or [])

    async def read() -> list["SiteReport"]:
        async with session(conn.server, conn.credentials()) as at_hub:
            return await read_sites(at_hub, wanted)

    reports = run_command(read())
    missing = [n for n in wanted if n not in {r.site.name for r in reports}]
    if missing:
        from cli.errors import fail

        fail(f'site "{missing[0]}" not found (no skyctl site init for it at this hub)', 1)
    return wanted, reports


def _site_object(report: "SiteReport") -> dict[str, object]:
    site = report.site
    return {
        "apiVersion": "skyflow.io/v1",
        "kind": "Site",
        "metadata": {"name": site.name},
        "spec": {
            "domain": site.domain,
            "hub": site.hub_url,
            "leaseSeconds": site.lease_s,
            "policy": site.policy.kind,
            "graceSeconds": site.policy.grace_s,
        },
        "status": {
            "state": report.state,
            "link": "up" if report.state == "live" else "down",
            "silentSeconds": report.silent_s,
            "lag": report.lag,
            "newestMessage": report.newest.isoformat() if report.newest else None,
            "observedAt": report.at.isoformat(),
            "streams": [
                {"name": h.stream, "silentSeconds": h.silent_s, "lag": h.lag, "error": h.error}
                for h in report.heard
            ],
        },
    }
