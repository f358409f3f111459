"""``skyctl proxy``: this node forwards the registry's cluster IPs, node ports and
load-balancer ingress IPs to the services' ready endpoints, kept current by the Resolver.

Like ``skyctl dns`` it is a reader of the registry that runs where the traffic is (one per
node, as kube-proxy is) and keeps forwarding while NATS is away.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.dataplane import DEFAULT_BALANCE, DEFAULT_CHECK_EVERY, DEFAULT_TABLE, ProxyPlan
from cli.lifetime import run_command, run_until_stopped

__all__ = ["proxy_command"]


@connection_options
def proxy_command(
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="How to forward: nftables (the kernel; needs root and nft) or userspace "
            "(listeners in this process; no root). Default: nftables where it can run.",
        ),
    ] = None,
    balance: Annotated[
        str,
        typer.Option(
            "--balance",
            metavar="HOW",
            help="userspace mode: round-robin or least-connections.",
        ),
    ] = DEFAULT_BALANCE,
    node_address: Annotated[
        list[str] | None,
        typer.Option(
            "--node-address",
            metavar="IP",
            help="An address of this node to take node ports on (repeat for more; "
            "default: every non-loopback IPv4 address).",
        ),
    ] = None,
    check_every: Annotated[
        float,
        typer.Option(
            "--check-every",
            metavar="SECONDS",
            help="How often to check that the kernel still holds the plan (and repair it).",
        ),
    ] = DEFAULT_CHECK_EVERY,
    table: Annotated[
        str,
        typer.Option(
            "--table",
            metavar="NAME",
            envvar="SKYFLOW_PROXY_TABLE",
            help="The nftables table this proxy owns (ip family); nothing else is touched.",
        ),
    ] = DEFAULT_TABLE,
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup", help="Remove this node's forwarding (the skyflow table) and exit."
        ),
    ] = False,
    sites: Annotated[
        bool,
        typer.Option(
            "--sites",
            help="A service with no ready endpoint of its own forwards to another "
            "site's, by each site's lease (live sites first, then stale, by name; "
            "revoked never). At a hub: its sites'. At a site: the hub's and other "
            "sites', while it hears the hub (docs/sites.md).",
        ),
    ] = False,
    *,
    conn: Connection,
) -> None:
    """Forward cluster IPs, node ports and ingress IPs to ready endpoints, until Ctrl-C.

    Every service port's cluster IP (inside the registry's service range), node port (on
    this node's addresses) and load-balancer ingress IP goes to the service's ready
    endpoints, chosen evenly per connection; a service with no ready endpoint refuses at
    once. Changes are applied as they come; forwarding stays in place when the proxy
    stops, and --cleanup removes it.

    Example:  sudo skyctl proxy --node-address 192.0.2.10

              curl http://$(skyctl get svc web -n shop -o jsonpath='{.spec.clusterIP}')/
    """
    plan = ProxyPlan.from_flags(mode, node_address, balance, check_every, table, cleanup=cleanup)

    async def remove() -> None:
        from registry.proxy.nftables import Nftables

        assert isinstance(plan.forwarder, Nftables)
        removed = await plan.forwarder.cleanup()
        print(f"proxy: removed table ip {table}" if removed else "proxy: nothing to remove")

    async def run() -> None:
        async with (
            await conn.open(keep_reconnecting=True) as registry,
            registry.resolver(sites=sites) as resolver,
        ):
            await plan.serve(registry, resolver, conn.server)

    if cleanup:
        run_command(remove())
        return
    run_until_stopped(run)
