"""What the hub serves of its sites, on real servers (``tests/sitesetup.py``: a hub and two
sites, east's leaf link through a forwarder the test cuts): ``get endpoints`` with a SITE
column, and the hub's Resolver and DNS (``--sites``) answering a service that has no
ready endpoint of its own with another site's, by each site's lease: stale marked with
its age, revoked never, and a cut site never answered as live."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time

import dns.asyncresolver
import dns.exception

from events import Port, Service, ServiceType
from events.task import Task
from registry.client import Registry
from tests.helpers import Lines, skyctl, start, until
from tests.proxy.traffic import NODE, http_backends, http_get, userspace_proxy
from tests.sitesetup import EAST_GRACE_S, EAST_LEASE_S, create_web, web_task
from tests.sitesetup import Running as Sites

_SERVING = re.compile(r"^dns: serving \S+ on 127\.0\.0\.1:(\d+) ")


async def start_dns(url: str, *flags: str) -> tuple[subprocess.Popen[str], int]:
    """``skyctl dns`` on a free port; its port once it has read the registry."""
    proc = start("dns", "--listen", "127.0.0.1:0", *flags, url=url)
    lines = Lines(proc)
    await lines.wait_for(lambda line: _SERVING.match(line) is not None)
    (port,) = [int(m.group(1)) for _, line in lines.lines if (m := _SERVING.match(line))]
    return proc, port


async def answer(port: int, name: str) -> set[str] | str:
    """The A records' addresses, or what the resolver raised instead (NXDOMAIN, ...)."""
    ask = dns.asyncresolver.Resolver(configure=False)
    ask.nameservers = ["127.0.0.1"]
    ask.port = port
    ask.timeout = ask.lifetime = 2.0
    try:
        found = await ask.resolve(name, "A")
    except dns.exception.DNSException as exc:
        return type(exc).__name__
    return {rdata.to_text() for rdata in found}


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


async def test_get_endpoints_at_the_hub_shows_every_site(
    sites: Sites, recorders: None, ns: str
) -> None:
    hub = sites.hub
    create_web(hub, ns)
    async with (
        await Registry.connect(hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(sites.west) as at_west,
        at_hub.announce(web_task(ns, "web-hub", "10.0.0.1"), ttl=10),
        at_east.announce(web_task(ns, "web-east", "10.1.0.1"), ttl=10),
        at_west.announce(web_task(ns, "web-west", "10.2.0.1"), ttl=10),
    ):
        expected = [
            ["web", "<hub>", "-", "10.0.0.1:8080"],
            ["web", "east", "live", "10.1.0.1:8080"],
            ["web", "west", "live", "10.2.0.1:8080"],
        ]  # each task once, at its own site

        async def all_three() -> bool:
            found = skyctl("get", "endpoints", "-n", ns, url=hub)
            assert found.code == 0, found.err
            header = found.out.splitlines()[0].split() if found.out else []
            return (
                header == ["NAME", "SITE", "LEASE", "ENDPOINTS", "AGE"]
                and [r[:4] for r in rows(found.out)] == expected
            )

        await until("the hub lists every site's endpoints, each once", all_three, timeout=30)
        everywhere = skyctl("get", "endpoints", "-A", url=hub)
        mine = [r for r in rows(everywhere.out) if r[0] == ns]
        assert [[r[1], r[2], r[4]] for r in mine] == [[r[0], r[1], r[3]] for r in expected]
        one = skyctl("get", "endpoints", "-n", ns, "--site", "west", "-o", "json", url=hub)
        assert one.code == 0, one.err
        (item,) = json.loads(one.out)["items"]
        assert item["metadata"]["annotations"] == {
            "skyflow.io/site": "west",
            "skyflow.io/lease": "live",
        }
        assert [a["ip"] for s in item["subsets"] for a in s["addresses"]] == ["10.2.0.1"]
        missing = skyctl("get", "endpoints", "-n", ns, "--site", "north", url=hub)
        assert missing.code == 1
        assert missing.err == (
            'error: site "north" not found (no skyctl site init for it at this hub)\n'
        )
        # A server with no sites lists as before: no SITE column.
        at_west_table = skyctl("get", "endpoints", "-n", ns, url=sites.west)
        assert at_west_table.out.splitlines()[0].split() == ["NAME", "ENDPOINTS", "AGE"]

        # A site's task's transitions, asked of the hub: from its copy of east's history.
        def east_events(*flags: str) -> list[list[str]]:
            found = skyctl("events", "--for", "task/web-east", "-n", ns, *flags, url=hub)
            assert found.code == 0, found.err
            return rows(found.out)

        async def joined_at_east() -> bool:
            return any(r[1:3] == ["web-east", "joined"] for r in east_events("--site", "east"))

        await until("east's task's join, asked of the hub", joined_at_east, timeout=30)
        assert east_events("--site", "west") == []  # west's copy: not a task of west
        assert east_events() == []  # nor of the hub's own history
        not_a_task = skyctl("events", "-n", ns, "--site", "east", url=hub)
        assert not_a_task.code == 2 and "give --for task/NAME" in not_a_task.err
        north = skyctl("events", "--for", "task/x", "-n", ns, "--site", "north", url=hub)
        assert north.code == 1 and "no site history SKYFLOW_SITE_MEMBERSHIP_north" in north.err


async def test_a_site_falls_back_to_the_hubs_view(sites: Sites, recorders: None, ns: str) -> None:
    """At west (hearing the hub), a service with no ready endpoint at west resolves to
    the hub's own or to another site's, through the hub's view; its own come first."""
    hub, west = sites.hub, sites.west
    for name in ("solo", "central"):
        made = skyctl("create", "service", name, "-n", ns, "-s", f"app={name}", "-p", "80",
                      url=hub)  # fmt: skip
        assert made.code == 0, made.err
    solo_east = Task(namespace=ns, name="solo-e", labels={"app": "solo"}, address="10.1.0.5")
    central = Task(namespace=ns, name="central", labels={"app": "central"}, address="10.0.0.5")
    domain = "skyflow."
    async with (
        await Registry.connect(hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(west) as at_west,
        at_east.announce(solo_east, ttl=10),
        at_hub.announce(central, ttl=10),
        at_west.resolver(sites=True) as resolver,
    ):

        async def resolves(service: str, site: str | None, address: str) -> bool:
            try:
                found = await resolver.answer(f"{ns}/{service}")
            except Exception:  # (not in west's mirror yet)
                return False
            ready = [a.address for a in found.endpoints.addresses if a.ready]
            return (found.site, ready) == (site, [address])

        await until("west resolves solo to east's", lambda: resolves("solo", "east", "10.1.0.5"))
        central_at_hub = lambda: resolves("central", "hub", "10.0.0.5")  # noqa: E731
        await until("west resolves central to the hub's", central_at_hub)
        proc, port = await start_dns(west, "--domain", domain, "--sites")

        async def dns(name: str, wanted: set[str]) -> bool:
            return await answer(port, f"{name}.{ns}.svc.{domain}") == wanted

        await until("west's DNS answers solo with east's", lambda: dns("solo", {"10.1.0.5"}), 15)
        solo_west = Task(namespace=ns, name="solo-w", labels={"app": "solo"}, address="10.2.0.5")
        async with at_west.announce(solo_west, ttl=10):
            await until("west's own first", lambda: resolves("solo", None, "10.2.0.5"), 15)
            await until("west's DNS: its own", lambda: dns("solo", {"10.2.0.5"}), 15)
        proc.terminate()
        proc.wait(10)


async def test_the_hubs_resolver_and_dns_follow_a_cut_sites_lease(
    sites: Sites, recorders: None, ns: str
) -> None:
    """``api`` has no task at the hub and one at east: the hub's Resolver and DNS answer
    with east's while the hub hears east, marked stale with its age once it has not for
    the lease, and with nothing once the grace is past; never live during the cut."""
    hub, domain = sites.hub, "skyflow."
    made = skyctl("create", "service", "api", "-n", ns, "-s", "app=api", "-p", "80", url=hub)
    assert made.code == 0, made.err
    name = f"api.{ns}.svc.{domain}"
    made = skyctl("create", "service", "far", "-n", ns, "-s", "app=far", "-p", "80", url=hub)
    assert made.code == 0, made.err
    api = Task(namespace=ns, name="api-east", labels={"app": "api"}, address="10.1.0.7")
    far = Task(namespace=ns, name="far-west", labels={"app": "far"}, address="10.2.0.7")
    proc, port = await start_dns(hub, "--domain", domain, "--sites")
    async with (
        await Registry.connect(hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(sites.west) as at_west,
        at_east.announce(api, ttl=10),
        at_west.announce(far, ttl=10),
        at_hub.resolver(sites=True) as resolver,
        at_east.resolver(sites=True) as east_resolver,
    ):

        async def east_sees_west() -> bool:
            try:
                return (await east_resolver.answer(f"{ns}/far")).site == "west"
            except Exception:  # (not in east's mirror yet)
                return False

        await until("east resolves far to west's, through the hub", east_sees_west, 30)

        async def from_east() -> bool:
            found = await resolver.answer(f"{ns}/api")
            return found.site == "east" and found.state == "live"

        await until("the hub resolves api to east's task", from_east, timeout=30)
        assert resolver.pick(f"{ns}/api").address == "10.1.0.7"
        async with at_hub.resolver() as plain:  # without sites: the hub's own only
            assert (await plain.answer(f"{ns}/api")).site is None

        async def dns_east() -> bool:
            return await answer(port, name) == {"10.1.0.7"}

        await until("the hub's DNS answers api with east's task", dns_east, timeout=15)

        sites.link.cut()
        cut_at = time.monotonic()
        seen: list[tuple[float, str, str | None]] = []
        checked_stale = False
        try:
            while (elapsed := time.monotonic() - cut_at) < 20:
                found = await resolver.answer(f"{ns}/api")
                seen.append((elapsed, found.state, found.site))
                if elapsed > EAST_LEASE_S + 1.0:
                    # Never live once the hub cannot have heard from east for the lease.
                    assert found.state != "live", seen
                    # East cut off: nothing but its own (none for far), as it cannot
                    # hear the hub. (Its lease on the hub is east's lease too, 2 s, and
                    # a failed read of the hub's view drops it at once.)
                    far_at_east = await east_resolver.answer(f"{ns}/far")
                    assert far_at_east.site is None, far_at_east
                if found.stale:
                    assert found.site == "east" and found.stale_s is not None
                    assert found.stale_s >= EAST_LEASE_S, seen
                    assert [a.address for a in found.endpoints.addresses] == ["10.1.0.7"]
                    if not checked_stale and found.stale_s < EAST_GRACE_S - 2.0:
                        # Within the grace, what east last reported is served, said stale:
                        # by DNS (no mark there: its warning line is checked at the end)
                        # and by the listing, its row marked with its age.
                        checked_stale = True
                        assert await answer(port, name) == {"10.1.0.7"}
                        listing = skyctl("get", "endpoints", "-n", ns, url=hub)
                        assert "warning: site east is stale" in listing.err, listing.err
                        (row,) = [r for r in rows(listing.out) if r[:2] == ["api", "east"]]
                        assert re.fullmatch(r"stale\(\d+\.\ds\)", row[2]), row
                        assert row[3] == "10.1.0.7:80", row
                if found.site is None:
                    break  # revoked
                await asyncio.sleep(0.1)
            states = [state for _, state, _ in seen]
            assert "stale" in states, seen
            assert checked_stale, f"east was stale too briefly to check the listing: {seen}"
            assert states[-1] == "local", f"east never revoked: {seen}"
            revoked_at = seen[-1][0]
            assert revoked_at >= EAST_GRACE_S - 1.0, seen  # (the heartbeat's second)
            assert not (await resolver.answer(f"{ns}/api")).endpoints.addresses

            async def dns_none() -> bool:
                return await answer(port, name) != {"10.1.0.7"}

            await until("the hub's DNS stops answering with east's task", dns_none, 10)
            listing = skyctl("get", "endpoints", "-n", ns, url=hub)
            assert listing.code == 0, listing.err
            assert "warning: site east is revoked" in listing.err
            assert all(r[1] != "east" for r in rows(listing.out)), listing.out
        finally:
            sites.link.heal()
        await until("api resolves to east again", from_east, timeout=60)
        await until("the hub's DNS answers east's task again", dns_east, timeout=15)
        stale = [when for when, state, _ in seen if state == "stale"]
        print(
            f"\nhub resolver: east stale {stale[0]:.1f} s into the cut, revoked "
            f"{revoked_at:.1f} s (lease {EAST_LEASE_S:g}s, revoke-after {EAST_GRACE_S:g}s)"
        )
    proc.terminate()
    proc.wait(10)
    err = proc.stderr.read() if proc.stderr is not None else ""
    assert "warning: site east is stale" in err, err
    assert "warning: site east is revoked" in err, err


async def test_the_hubs_proxy_forwards_to_another_sites_endpoint(
    sites: Sites, recorders: None, ns: str
) -> None:
    """``skyctl proxy --sites`` at the hub: a node port of a service with no endpoint at
    the hub reaches the task east reported (a real backend on loopback)."""
    hub = sites.hub
    async with (
        http_backends(["127.0.0.121"]) as (backend,),
        await Registry.connect(hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
    ):
        service = Service(
            namespace=ns, name="shop", type=ServiceType.NODE_PORT, selector={"app": "shop"},
            ports=(Port(port=80, target_port=backend.port),),
        )  # fmt: skip
        record = await at_hub.create(service)
        node_port = record.service.ports[0].node_port
        assert node_port is not None
        shop = Task(namespace=ns, name="shop-east", labels={"app": "shop"}, address="127.0.0.121")
        async with (
            at_east.announce(shop, ttl=10),
            userspace_proxy(hub, "--sites") as proxy,
        ):

            async def forwarded() -> bool:
                try:
                    return await http_get(NODE, node_port, timeout=2.0) == "127.0.0.121"
                except (OSError, TimeoutError):
                    return False

            await until("the hub's proxy reaches east's task", forwarded, timeout=30)
            assert backend.accepted >= 1
            await proxy.wait_for(lambda line: "site east is live" in line, timeout=10)


async def test_describe_at_the_hub_shows_each_sites_endpoints(
    sites: Sites, recorders: None, ns: str
) -> None:
    """``describe service`` at the hub (and the web UI's service page, which renders the
    same text): a ``Site Endpoints:`` line per site, its lease and the service's ready
    endpoints among the tasks it last reported."""
    from cli.connection import Connection
    from cli.webapp import make_app
    from tests.ui.support import browsing

    hub = sites.hub
    create_web(hub, ns)
    async with (
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(sites.west) as at_west,
        at_east.announce(web_task(ns, "web-east", "10.1.0.9"), ttl=10),
        at_west.announce(web_task(ns, "web-west", "10.2.0.9"), ttl=10),
    ):
        wanted = ["Site Endpoints:  east  live  10.1.0.9:8080", "west  live  10.2.0.9:8080"]

        def lines() -> list[str]:
            described = skyctl("describe", "service", "web", "-n", ns, url=hub)
            assert described.code == 0, described.err
            return [" ".join(line.split()) for line in described.out.splitlines()]

        async def both() -> bool:
            found = lines()
            return all(" ".join(w.split()) in found for w in wanted)

        await until("describe at the hub shows both sites' endpoints", both, timeout=30)
        assert "Endpoints: <none>" in lines()  # the hub's own: none
        async with browsing(make_app(Connection(server=hub), anonymous=True)) as http:
            page = await http.get(f"/services/{ns}/web")
            assert page.status_code == 200, page.text
            assert "Site Endpoints:" in page.text and "10.2.0.9:8080" in page.text
    # At a site (no sites of its own), describe is as before: no such line.
    there = skyctl("describe", "service", "web", "-n", ns, url=sites.west)
    assert there.code == 0, there.err
    assert "Site Endpoints:" not in there.out


async def test_the_hubs_resolver_follows_its_sites_between_reads(
    sites: Sites, recorders: None, ns: str
) -> None:
    """The hub's Resolver (``sites=True``) follows each site's history rather than reading
    it each time: with its leases read once an hour, a task announced at east still
    reaches it, and leaves it when withdrawn (only a follow can tell it)."""
    hub = sites.hub
    made = skyctl("create", "service", "solo", "-n", ns, "-s", "app=solo", "-p", "80", url=hub)
    assert made.code == 0, made.err
    solo = Task(namespace=ns, name="solo-e", labels={"app": "solo"}, address="10.1.0.77")
    async with (
        await Registry.connect(sites.hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
        at_hub.resolver(sites=True, sites_every=3600) as resolver,
    ):

        async def answered(site: str | None, ready: list[str]) -> bool:
            found = await resolver.answer(f"{ns}/solo")
            shown = [a.address for a in found.endpoints.addresses if a.ready]
            return (found.site, shown) == (site, ready)

        await until("solo has no endpoint anywhere", lambda: answered(None, []), timeout=30)
        async with at_east.announce(solo, ttl=10):
            await until("east's task, followed", lambda: answered("east", ["10.1.0.77"]), 30)
        await until("its withdrawal, followed", lambda: answered(None, []), timeout=30)
