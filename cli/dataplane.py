"""The node's data plane, as ``skyctl dns``, ``skyctl proxy`` and ``skyctl agent --dns
--proxy`` run it: each set up from its flags once (``DnsPlan``, ``ProxyPlan``: every flag
checked before anything starts), then served over a registry and a Resolver it is given,
so the agent serves both from the one warm view it keeps for the node.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cli.parse import parse_ttl_flag
from registry.errors import InvalidInput

if TYPE_CHECKING:
    import dns.name

    from registry.client import Registry
    from registry.discovery.resolver import Resolver
    from registry.dns.server import DnsServer
    from registry.dns.zone import Zone
    from registry.proxy.nftables import Nftables
    from registry.proxy.plan import Scope
    from registry.proxy.userspace import Userspace

__all__ = [
    "DEFAULT_BALANCE",
    "DEFAULT_CHECK_EVERY",
    "DEFAULT_DOMAIN",
    "DEFAULT_LISTEN",
    "DEFAULT_TABLE",
    "DEFAULT_TTL",
    "MODES",
    "DnsPlan",
    "ProxyPlan",
    "local_addresses",
    "parse_domain_flag",
    "parse_listen",
    "parse_node_address",
]

DEFAULT_LISTEN = "127.0.0.1:8600"  # Consul's DNS port: no privileges needed
# The flags' defaults, the same for `skyctl dns`, `skyctl proxy` and `skyctl agent`.
DEFAULT_DOMAIN = "skyflow."
DEFAULT_TTL = "5s"
DEFAULT_BALANCE = "round-robin"
DEFAULT_CHECK_EVERY = 10.0
DEFAULT_TABLE = "skyflow"
STALE_WARNING_S = 5.0
_LISTEN_FORM = "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8600 or [::1]:8600"
MODES = ("nftables", "userspace")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


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


@dataclass(frozen=True)
class DnsPlan:
    """What ``skyctl dns`` answers, and where: its flags, checked."""

    host: str
    port: int
    domain: dns.name.Name
    ttl: int
    cluster_ips: bool

    @classmethod
    def from_flags(
        cls,
        listen: str,
        domain: str = DEFAULT_DOMAIN,
        ttl: str = DEFAULT_TTL,
        *,
        cluster_ips: bool,
        allow_remote: bool,
    ) -> DnsPlan:
        host, port = parse_listen(listen, allow_remote=allow_remote)
        return cls(host, port, parse_domain_flag(domain), parse_ttl_flag(ttl), cluster_ips)

    async def bind(self) -> DnsServer:
        """Take the address first, so a bad one fails before anything else is started;
        ``serve`` then answers on it."""
        from registry.dns.server import listen
        from registry.dns.zone import Zone

        serial = int(time.time())
        zone = Zone(self.domain, ttl=self.ttl, serial=serial, cluster_ips=self.cluster_ips)
        return await listen(zone, self.host, self.port)

    async def serve(self, server: DnsServer, resolver: Resolver) -> None:
        """Answer on ``server`` from ``resolver``'s view until cancelled, saying when it is
        loaded and while the view is stale."""
        from registry.dns.feed import feed

        zone, host = server.zone, self.host
        shown = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"

        def loaded() -> None:
            counts = zone.counts
            print(
                f"dns: serving {self.domain} on {shown} over UDP and TCP "
                f"({counts['services']} services, {counts['tasks']} tasks; "
                f"TTL {self.ttl}s; Ctrl-C stops)",
                flush=True,
            )

        stale = asyncio.create_task(_warn_while_stale(resolver, zone))
        sites = asyncio.create_task(warn_site_leases(resolver, "dns"))
        try:
            await feed(resolver, zone, on_loaded=loaded, on_conflict=_warn_conflict)
        finally:
            stale.cancel()
            sites.cancel()


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


async def warn_site_leases(resolver: Resolver, what: str) -> None:
    """With ``--sites``: a line each time a site's lease changes state, so that answers
    from a stale site (they cannot carry a mark in DNS or a forwarded connection) and a
    revoked site's absence are said where the operator looks (invariant 18)."""
    from cli.terminal import safe

    said: dict[str, str] = {}
    while True:
        for site in await resolver.sites():
            if said.get(site.site) == site.state:
                continue
            if site.warning is None:
                print(safe(f"{what}: site {site.site} is live; its endpoints are served"))
            else:
                print(safe(f"warning: {site.warning}"), file=sys.stderr, flush=True)
            said[site.site] = site.state
        sys.stdout.flush()
        await asyncio.sleep(1.0)


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


@dataclass(frozen=True)
class ProxyPlan:
    """How ``skyctl proxy`` forwards: its flags, checked, and the forwarder they choose."""

    mode: str
    forwarder: Nftables | Userspace
    node_addresses: tuple[str, ...]
    check_every: float
    table: str

    @classmethod
    def from_flags(
        cls,
        mode: str | None,
        node_address: list[str] | None,
        balance: str = DEFAULT_BALANCE,
        check_every: float = DEFAULT_CHECK_EVERY,
        table: str = DEFAULT_TABLE,
        *,
        cleanup: bool = False,
    ) -> ProxyPlan:
        from registry.proxy.nftables import Nftables
        from registry.proxy.userspace import BALANCES, Userspace

        if mode is not None and mode not in MODES:
            raise InvalidInput("mode", mode, f"must be one of: {', '.join(MODES)}")
        if balance not in BALANCES:
            raise InvalidInput("balance", balance, f"must be one of: {', '.join(BALANCES)}")
        if not 0.5 <= check_every <= 3600:
            raise InvalidInput("check-every", str(check_every), "must be from 0.5 to 3600 seconds")
        chosen = tuple(parse_node_address(a) for a in node_address or [])
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
        return cls(mode, forwarder, chosen, check_every, table)

    async def serve(self, registry: Registry, resolver: Resolver, url: str) -> None:
        """Forward what ``resolver`` sees until cancelled (the kernel's forwarding stays)."""
        from registry.proxy.runner import Proxy, Synced
        from registry.proxy.userspace import Userspace

        scope = await _scope(registry, url, list(self.node_addresses))

        def synced(done: Synced) -> None:
            if done.full:
                print(
                    f"proxy: forwarding {done.frontends} frontends (mode {self.mode}, node "
                    f"ports on {', '.join(scope.node_addresses) or 'no address'}; "
                    f"{done.seconds * 1000:.0f} ms; Ctrl-C stops, forwarding stays)",
                    flush=True,
                )

        proxy = Proxy(
            self.forwarder,
            scope,
            check_every=self.check_every,
            on_synced=synced,
            on_problem=_warn,
            on_repaired=lambda: _warn("the kernel's table differed from the plan: rewritten"),
        )
        sites = asyncio.create_task(warn_site_leases(resolver, "proxy"))
        try:
            await proxy.run(resolver, registry.log)
        finally:
            sites.cancel()
            if isinstance(self.forwarder, Userspace):
                await self.forwarder.close()


def _warn(problem: str) -> None:
    from cli.terminal import safe

    print(f"warning: {safe(problem)}", file=sys.stderr, flush=True)
