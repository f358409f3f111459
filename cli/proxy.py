"""``skyctl proxy``: this node forwards the registry's cluster IPs, node ports and
load-balancer ingress IPs to the services' ready endpoints, kept current by the Resolver.

Like ``skyctl dns`` it is a reader of the registry that runs where the traffic is (one per
node, as kube-proxy is) and keeps forwarding while NATS is away.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command, run_until_stopped
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.proxy.plan import Scope

__all__ = ["local_addresses", "parse_node_address", "proxy_command"]

MODES = ("nftables", "userspace")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def parse_node_address(text: str) -> str:
    """An IPv4 address of this node that node ports are taken on."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidInput("node-address", text, "must be an IPv4 address of this node") from None
    if not isinstance(address, ipaddress.IPv4Address) or address.is_unspecified:
        raise InvalidInput("node-address", text, "must be an IPv4 address of this node")
    return str(address)


def local_addresses() -> list[str]:
    """This node's IPv4 addresses, loopback first (``ip -j -4 addr``); empty if unknown."""
    ip = shutil.which("ip")
    if ip is None:
        return []
    try:
        out = subprocess.run(
            [ip, "-j", "-4", "addr", "show"], capture_output=True, timeout=10, check=True
        ).stdout
        found = [
            str(ipaddress.IPv4Address(info["local"]))
            for link in json.loads(out)
            for info in link.get("addr_info", [])
            if isinstance(info, dict) and info.get("family") == "inet"
        ]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return []
    return sorted(set(found), key=lambda a: (not ipaddress.IPv4Address(a).is_loopback, a))


def _nats_endpoints(url: str) -> set[tuple[str, int]]:
    """Where the NATS server listens, as addresses: nothing may forward those."""
    found: set[tuple[str, int]] = set()
    for part in url.split(","):
        split = urlsplit(part if "://" in part else f"nats://{part}")
        port = split.port or 4222
        if not split.hostname:
            continue
        try:
            infos = socket.getaddrinfo(split.hostname, port, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        found.update((str(info[4][0]), port) for info in infos)
    return found


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
    ] = "round-robin",
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
    ] = 10.0,
    table: Annotated[
        str,
        typer.Option(
            "--table",
            metavar="NAME",
            envvar="SKYFLOW_PROXY_TABLE",
            help="The nftables table this proxy owns (ip family); nothing else is touched.",
        ),
    ] = "skyflow",
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup", help="Remove this node's forwarding (the skyflow table) and exit."
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
    from registry.proxy.nftables import Nftables
    from registry.proxy.userspace import BALANCES, Userspace

    if mode is not None and mode not in MODES:
        raise InvalidInput("mode", mode, f"must be one of: {', '.join(MODES)}")
    if balance not in BALANCES:
        raise InvalidInput("balance", balance, f"must be one of: {', '.join(BALANCES)}")
    if not 0.5 <= check_every <= 3600:
        raise InvalidInput("check-every", str(check_every), "must be from 0.5 to 3600 seconds")
    chosen = [parse_node_address(a) for a in node_address or []]
    if not _TABLE_NAME.fullmatch(table):
        raise InvalidInput("table", table, "must be 1-64 letters, digits, '_' or '-'")

    why = Nftables.available()
    mode = mode or ("nftables" if why is None else "userspace")
    forwarder: Nftables | Userspace
    if mode == "nftables":
        if why is not None:
            raise InvalidInput("mode", mode, f"cannot run here: {why} (or --mode userspace)")
        forwarder = Nftables(table)
    else:
        if cleanup:
            raise InvalidInput("cleanup", "--cleanup", "only the nftables mode leaves anything")
        forwarder = Userspace(balance, on_problem=_warn)

    async def remove() -> None:
        assert isinstance(forwarder, Nftables)
        removed = await forwarder.cleanup()
        print(f"proxy: removed table ip {table}" if removed else "proxy: nothing to remove")

    async def run() -> None:
        from registry.proxy.runner import Proxy, Synced

        async with (
            await conn.open(keep_reconnecting=True) as registry,
            registry.resolver() as resolver,
        ):
            scope = await _scope(registry, conn.server, chosen)

            def synced(done: Synced) -> None:
                if done.full:
                    print(
                        f"proxy: forwarding {done.frontends} frontends (mode {mode}, node "
                        f"ports on {', '.join(scope.node_addresses) or 'no address'}; "
                        f"{done.seconds * 1000:.0f} ms; Ctrl-C stops, forwarding stays)",
                        flush=True,
                    )

            proxy = Proxy(
                forwarder,
                scope,
                check_every=check_every,
                on_synced=synced,
                on_problem=_warn,
                on_repaired=lambda: _warn("the kernel's table differed from the plan: rewritten"),
            )
            try:
                await proxy.run(resolver, registry.log)
            finally:
                if isinstance(forwarder, Userspace):
                    await forwarder.close()

    if cleanup:
        run_command(remove())
        return
    run_until_stopped(run)


async def _scope(registry: Registry, url: str, chosen: list[str]) -> Scope:
    from registry.proxy.plan import Scope

    ranges = await registry.ranges()
    local = local_addresses()
    nodes = chosen or [a for a in local if not ipaddress.IPv4Address(a).is_loopback]
    nats = _nats_endpoints(url)
    return Scope(
        service_network=ranges.network,
        first_node_port=ranges.first_port,
        last_node_port=ranges.last_port,
        node_addresses=tuple(nodes),
        reserved=frozenset({*local, *(a for a, _ in nats)}),
        reserved_ports=frozenset(nats),
    )


def _warn(problem: str) -> None:
    from cli.terminal import safe

    print(f"warning: {safe(problem)}", file=sys.stderr, flush=True)
