"""``skyctl dns``: answer DNS queries for services and tasks, kept current by the Resolver.

A command of its own rather than part of ``skyctl server``: it is a reader of the registry
like any Resolver, so it belongs where the clients are (one per machine or pod, as a
node-local cache is, or several for redundancy), it must not take the log's server down
with it, and it keeps answering while that server is away, which it could not do from
inside the server's process.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.dataplane import DEFAULT_DOMAIN, DEFAULT_LISTEN, DEFAULT_TTL, DnsPlan
from cli.lifetime import run_until_stopped

__all__ = ["dns_command"]


@connection_options
def dns_command(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to answer, over UDP and TCP (port 0: any free port).",
        ),
    ] = DEFAULT_LISTEN,
    domain: Annotated[
        str, typer.Option("--domain", metavar="DOMAIN", help="The domain the names are under.")
    ] = DEFAULT_DOMAIN,
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="How long clients may keep an answer (whole seconds: 5s, 1m).",
        ),
    ] = DEFAULT_TTL,
    cluster_ips: Annotated[
        bool,
        typer.Option(
            "--cluster-ips",
            help="Answer a service with a cluster IP with that address, as CoreDNS does (for "
            "nodes where skyctl proxy routes cluster IPs); headless services still answer "
            "their endpoints.",
        ),
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --listen address other machines can reach (not loopback): "
            "anyone who can reach it learns every service's endpoints.",
        ),
    ] = False,
    sites: Annotated[
        bool,
        typer.Option(
            "--sites",
            help="A service with no ready endpoint of its own answers with another "
            "site's, by each site's lease (live sites first, then stale, by name; "
            "revoked never). At a hub: its sites'. At a site: the hub's and other "
            "sites', while it hears the hub (docs/sites.md).",
        ),
    ] = False,
    *,
    conn: Connection,
) -> None:
    """Answer DNS for services and tasks, fed live by the registry, until Ctrl-C.

    A/AAAA for SERVICE.NAMESPACE.svc.DOMAIN are the ready endpoints' addresses;
    SRV for _PORT._tcp.SERVICE.NAMESPACE.svc.DOMAIN carry the target port;
    with --cluster-ips, a service with a cluster IP answers A with it and SRV with its own
    name and port (skyctl proxy leads them to the endpoints);
    A/AAAA for TASK.NAMESPACE.task.DOMAIN are the task's address.

    A large service answers a window of its endpoints that fits, the next on the next
    query. Where namespaces or names differ only in case, the lower-case one is served
    (or none), and a warning names them.

    Example:  skyctl dns --listen 127.0.0.1:8600 --domain skyflow.

              dig @127.0.0.1 -p 8600 web.shop.svc.skyflow.
    """
    plan = DnsPlan.from_flags(
        listen, domain, ttl, cluster_ips=cluster_ips, allow_remote=allow_remote
    )

    async def run() -> None:
        async with (
            await plan.bind() as server,
            await conn.open(keep_reconnecting=True) as registry,
            registry.resolver(sites=sites) as resolver,
        ):
            await plan.serve(server, resolver)

    run_until_stopped(run)
