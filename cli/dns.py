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


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8600``, ``[::1]:8600``, ``localhost:53`` -> (host, port); port 0 asks
    for any free port."""
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
    *,
    conn: Connection,
) -> None:
    """Answer DNS for services and tasks, fed live by the registry, until Ctrl-C.

    A/AAAA for SERVICE.NAMESPACE.svc.DOMAIN are the ready endpoints' addresses;
    SRV for _PORT._tcp.SERVICE.NAMESPACE.svc.DOMAIN carry the target port;
    A/AAAA for TASK.NAMESPACE.task.DOMAIN are the task's address.

    Example:  skyctl dns --listen 127.0.0.1:8600 --domain skyflow.

              dig @127.0.0.1 -p 8600 web.shop.svc.skyflow.
    """
    host, port = parse_listen(listen)
    name = parse_domain_flag(domain)
    seconds = parse_ttl_flag(ttl)

    async def run() -> None:
        from registry.dns.feed import feed
        from registry.dns.server import listen as serve
        from registry.dns.zone import Zone

        zone = Zone(name, ttl=seconds, serial=int(time.time()))
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
                await feed(resolver, zone, on_loaded=loaded)
            finally:
                stale.cancel()

    run_until_stopped(run)


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
