"""``skyctl dns``: answer DNS queries for services and tasks, kept current by the Resolver.

A command of its own rather than part of ``skyctl server``: it is a reader of the registry
like any Resolver, so it belongs where the clients are (one per machine or pod, as a
node-local cache is, or several for redundancy), it must not take the log's server down
with it, and it keeps answering while that server is away, which it could not do from
inside the server's process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_until_stopped
from cli.parse import parse_ttl_flag
from registry.errors import InvalidInput

if TYPE_CHECKING:
    import dns.name

    from registry.discovery.resolver import Resolver
    from registry.dns.zone import Zone

__all__ = ["dns_command", "parse_domain_flag", "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:8600"  # Consul's DNS port: no privileges needed
STALE_WARNING_S = 5.0
_LISTEN_FORM = "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8600 or [::1]:8600"


def parse_listen(text: str, *, allow_remote: bool = True) -> tuple[str, int]:
    """``127.0.0.1:8600``, ``[::1]:8600``, ``localhost:53`` -> (host, port); port 0 asks
    for any free port. An address other machines can reach (anything but loopback) only
    ``allow_remote``: the names it answers tell whoever asks where every service runs."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise InvalidInput("listen", text, _LISTEN_FORM)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise InvalidInput("listen", text, _LISTEN_FORM)
    elif ":" in host:
        raise InvalidInput("listen", text, "an IPv6 address goes in brackets, e.g. [::1]:8600")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput("listen", text, _LISTEN_FORM) from None
    if not address.is_loopback and not allow_remote:
        raise InvalidInput(
            "listen",
            text,
            "is not a loopback address: answering other machines needs --allow-remote",
        )
    return str(address), int(port)


def parse_domain_flag(text: str) -> dns.name.Name:
    from registry.dns.zone import parse_domain

    try:
        return parse_domain(text)
    except ValueError as exc:
        raise InvalidInput("domain", text, str(exc)) from None


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
    ] = "skyflow.",
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="How long clients may keep an answer (whole seconds: 5s, 1m).",
        ),
    ] = "5s",
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
    host, port = parse_listen(listen, allow_remote=allow_remote)
    name = parse_domain_flag(domain)
    seconds = parse_ttl_flag(ttl)

    async def run() -> None:
        from registry.dns.feed import feed
        from registry.dns.server import listen as serve
        from registry.dns.zone import Zone

        zone = Zone(name, ttl=seconds, serial=int(time.time()), cluster_ips=cluster_ips)
        async with (
            await serve(zone, host, port) as server,
            await conn.open(keep_reconnecting=True) as registry,
            registry.resolver() as resolver,
        ):
            shown = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"

            def loaded() -> None:
                counts = zone.counts
                print(
                    f"dns: serving {name} on {shown} over UDP and TCP "
                    f"({counts['services']} services, {counts['tasks']} tasks; "
                    f"TTL {seconds}s; Ctrl-C stops)",
                    flush=True,
                )

            stale = asyncio.create_task(_warn_while_stale(resolver, zone))
            try:
                await feed(resolver, zone, on_loaded=loaded, on_conflict=_warn_conflict)
            finally:
                stale.cancel()

    run_until_stopped(run)


def _warn_conflict(conflict: str) -> None:
    from cli.terminal import safe

    print(f"warning: {safe(conflict)}", file=sys.stderr, flush=True)


async def _warn_while_stale(resolver: Resolver, zone: Zone) -> None:
    """Once per outage: that answers are the last known, and when they are current again."""
    warned = False
    while True:
        await asyncio.sleep(1.0)
        stale = resolver.stale_for()
        if stale >= STALE_WARNING_S and not warned:
            print(
                f"warning: NATS unreachable for {stale:.0f} s; answering with the last known "
                f"endpoints ({zone.counts['services']} services)",
                file=sys.stderr,
                flush=True,
            )
            warned = True
        elif stale < STALE_WARNING_S and warned:
            print("dns: NATS reachable again; answers current", file=sys.stderr, flush=True)
            warned = False
