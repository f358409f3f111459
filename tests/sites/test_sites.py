"""A hub and two sites on real nats-servers, east's leaf link through a forwarder the test
cuts and heals (``tests/sitesetup.py``): a cut site keeps answering from what it has, the
hub never calls a site it cannot hear live, and the link comes back.

Cuts here last 4 s; cuts of 16 s and 40 s (whose resume delays differ) are in
``test_cuts.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events.sites import SITE_HISTORY_MAX_BYTES
from events.task import Task
from registry.client import Registry
from tests.helpers import raw_nats, running, skyctl, stream_last_seq, until
from tests.sitesetup import DOCUMENTED, render_configs, sites_ready
from tests.sitesetup import Running as Sites

ROOT = Path(__file__).resolve().parents[2]
CUT_S = 4.0
EAST_LEASE_S = 2.0


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    with sites_ready(tmp_path_factory.mktemp("sites"), "--lease", f"{EAST_LEASE_S:g}s") as up:
        yield up


def states(url: str) -> dict[str, dict[str, Any]]:
    """``get sites -o json`` at the hub: each site's status, by name."""
    result = skyctl("get", "sites", "-o", "json", url=url)
    assert result.code == 0, result.err
    found = json.loads(result.out)
    items = found["items"] if found.get("kind") == "List" else [found]
    return {item["metadata"]["name"]: item for item in items}


def test_the_documented_configs_are_the_tested_ones() -> None:
    for name, text in render_configs(DOCUMENTED).items():
        assert (ROOT / "cluster" / "sites" / name).read_text() == text, name


def test_site_init_reports_what_it_made_and_is_repeatable(sites: Sites) -> None:
    again = skyctl(
        "site",
        "init",
        "west",
        "--hub",
        sites.hub,
        "--policy",
        "keep-last-known",
        url=sites.west,
    )
    assert again.code == 0, again.err
    assert "stream SKYFLOW_SERVICES exists: a mirror of the hub's log (domain hub)" in again.out
    assert "stream SKYFLOW_SITE_TASKS_west updated at the hub: site.west.skyflow.task.>" in (
        again.out
    )
    assert again.lines[-1].startswith("site/west ready: domain west, hub domain hub, lease 5s")
    assert states(sites.hub)["west"]["spec"]["policy"] == "keep-last-known"
    back = skyctl("site", "init", "west", "--hub", sites.hub, url=sites.west)
    assert back.code == 0, back.err
    same = skyctl("site", "init", "west", "--hub", sites.hub, url=sites.west)
    assert "stream SKYFLOW_SITE_TASKS_west exists at the hub" in same.out, same.out
    assert "stream SKYFLOW_SITE_MEMBERSHIP_west exists at the hub" in same.out, same.out
    # The hub keeps west's history as long as west keeps its own, and within a bound.
    kept = asyncio.run(_max_age_and_bytes(sites.west, "SKYFLOW_MEMBERSHIP"))
    view = asyncio.run(_max_age_and_bytes(sites.hub, "SKYFLOW_SITE_MEMBERSHIP_west"))
    assert view == (kept[0], SITE_HISTORY_MAX_BYTES) and kept[0] == 30 * 86400 * 10**9
    assert states(sites.hub)["west"]["spec"] == {
        "domain": "west",
        "hub": sites.hub,
        "leaseSeconds": 5.0,
        "policy": "revoke-after",
        "graceSeconds": 120.0,
    }
    table = skyctl("get", "sites", url=sites.hub)
    assert table.lines[0].split() == [
        "NAME", "DOMAIN", "LINK", "LAST-HEARD", "LAG", "NEWEST", "STATE", "POLICY"
    ]  # fmt: skip
    assert [line.split()[0] for line in table.lines[1:]] == ["east", "west"]


async def _max_age_and_bytes(url: str, stream: str) -> tuple[int, int]:
    async with raw_nats(url) as nc:
        config = (await nc.jetstream().stream_info(stream)).config
        return int((config.max_age or 0) * 10**9), int(config.max_bytes or 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("East",), 'invalid site name "East"'),
        (("east", "--policy", "forget"), 'invalid --policy "forget"'),
        (("east", "--policy", "revoke-after 1s", "--lease", "5s"), "at least the lease"),
        (("east", "--lease", "0.5s"), 'invalid --lease "0.5s"'),
    ],
)
def test_bad_site_settings_are_refused_naming_them(
    sites: Sites, args: tuple[str, ...], message: str
) -> None:
    result = skyctl("site", "init", *args, "--hub", sites.hub, url=sites.east)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--every", "0s"), 2, 'invalid --every "0s"'),
        (("North",), 2, 'invalid site name "North"'),
        (("north",), 1, 'site "north" not found (no skyctl site init for it at this hub)'),
    ],
)
def test_site_watch_refuses_bad_input_naming_it(
    sites: Sites, args: tuple[str, ...], code: int, message: str
) -> None:
    result = skyctl("site", "watch", *args, url=sites.hub)
    assert result.code == code
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_get_sites_by_name(sites: Sites) -> None:
    one = skyctl("get", "sites", "east", "-o", "json", url=sites.hub)
    assert one.code == 0, one.err
    found = json.loads(one.out)
    assert (found["kind"], found["metadata"]["name"]) == ("Site", "east")
    assert {s["name"] for s in found["status"]["streams"]} == {
        "SKYFLOW_SITE_TASKS_east",
        "SKYFLOW_SITE_MEMBERSHIP_east",
    }
    assert skyctl("get", "site", "site/west", "-o", "name", url=sites.hub).out == "site/west\n"
    missing = skyctl("get", "sites", "north", url=sites.hub)
    assert missing.code == 1
    assert missing.err == 'error: site "north" not found (no skyctl site init for it at this hub)\n'
    none = skyctl("get", "sites", url=sites.east)  # a site has no sites of its own
    assert (none.code, none.out, none.err) == (0, "", "No resources found\n")


def test_site_status_is_asked_of_a_site(sites: Sites) -> None:
    status = skyctl("site", "status", url=sites.west)
    assert status.code == 0, status.err
    assert status.lines[0] == f"site/west: hub {sites.hub} (domain hub)"
    refused = skyctl("site", "status", url=sites.hub)
    assert refused.code == 2
    assert "is no site" in refused.err


def test_the_hub_itself_is_not_made_a_site(sites: Sites) -> None:
    """A server in the hub's own domain (here the hub itself, whose log would be lost to
    a mirror) cannot be made a site."""
    result = skyctl("site", "init", "hub2", "--hub", sites.hub, url=sites.hub)
    assert result.code == 2
    assert "a site needs its own" in result.err


async def test_a_cut_site_keeps_answering_and_the_hub_never_calls_it_live(
    sites: Sites, ns: str
) -> None:
    hub, east = sites.hub, sites.east
    created = skyctl(
        "create", "service", "web", "-n", ns, "-t", "ClusterIP", "-s", "app=web", "-p", "80:8080",
        url=hub,
    )  # fmt: skip
    assert created.code == 0, created.err

    async def mirrored(name: str) -> bool:
        return skyctl("get", "svc", name, "-n", ns, url=east).code == 0

    await until("east's mirror holds the service", lambda: mirrored("web"), timeout=30)
    # The hub has an intake of its own for the namespace: were east's heartbeats to cross
    # the leaf link as plain messages, the hub would store them a second time.
    assert skyctl("init", "--namespace", ns, url=hub).code == 0
    task = Task(namespace=ns, name="web-east-1", labels={"app": "web"}, address="10.7.0.1")
    async with (
        running("record", url=east, ready="record:"),
        await Registry.connect(east) as at_east,
        at_east.announce(task, ttl=3),
        at_east.resolver() as resolver,
    ):

        async def resolved_at_east() -> bool:
            found = skyctl("get", "endpoints", "web", "-n", ns, url=east)
            return found.code == 0 and "10.7.0.1:8080" in found.out

        await until("east resolves its own task", resolved_at_east, timeout=15)
        await resolver.endpoints(f"{ns}/web")  # followed from here on
        await until("both sites live", lambda: _all_live(hub), timeout=30)
        # Nothing of east's crossed the leaf link as plain messages: the hub's own
        # liveness stream does not hold east's task (only the sourced view does).
        assert "web-east-1" not in skyctl("get", "tasks", "-n", ns, url=hub).out
        before = await stream_last_seq(hub)

        async def hub_knows_east() -> bool:
            found = skyctl("get", "endpoints", "web", "-n", ns, "--site", "east", url=hub)
            return found.code == 0 and "10.7.0.1:8080" in found.out and not found.err

        await until("the hub has east's endpoints", hub_knows_east, timeout=30)

        sites.link.cut()
        cut_at = time.monotonic()
        try:
            # A task born and dead inside the cut: recorded at east, its join and leave
            # reach the hub's copy of east's history after the heal.
            brief = Task(namespace=ns, name="brief", labels={"app": "web"}, address="10.7.0.2")
            async with at_east.announce(brief, ttl=3):
                inside = await _recorded_at(east, ns, "10.7.0.2")
            after = await _recorded_at(east, ns, "10.7.0.2", present=False)
            seen: list[tuple[float, str, float]] = []
            while (elapsed := time.monotonic() - cut_at) < CUT_S:
                # The site answers from what it has: its service (mirror), its task.
                assert await resolved_at_east(), "east stopped resolving its own task"
                known = resolver.known(f"{ns}/web")  # the Resolver at the site, too
                assert known is not None and "web-east-1" in [a.task for a in known.addresses]
                view = states(hub)
                east_state = view["east"]["status"]
                seen.append((elapsed, east_state["state"], east_state["silentSeconds"] or 0.0))
                # One heartbeat interval (1 s) of slack beyond the lease: the hub cannot
                # know of a cut sooner than its next heartbeat fails to come.
                if elapsed > EAST_LEASE_S + 1.0:
                    assert east_state["state"] == "stale", seen
                    assert east_state["link"] == "down"
                assert view["west"]["status"]["state"] == "live", "the other site is unaffected"
                refused = skyctl(
                    "create", "service", "db", "-n", ns, "-s", "app=db", "-p", "80", url=east
                )
                assert refused.code == 1
                assert "this server is site east" in refused.err
                assert f"--server {hub}" in refused.err
                await asyncio.sleep(0.2)
            stale = [s for s in seen if s[1] == "stale"]
            assert stale, seen
            first_stale = stale[0][0]
            assert all(state == "stale" for when, state, _ in seen if when >= first_stale), (
                "a site the hub cannot hear came back live during the cut (a leaf "
                f"reconnected around the cut link?): {seen}"
            )
            # What the hub says of east's endpoints now: the last it heard, said stale.
            last = skyctl("get", "endpoints", "web", "-n", ns, "--site", "east", url=hub)
            assert last.code == 0, last.err
            assert "10.7.0.1:8080" in last.out
            assert "warning: site east is stale: the hub last heard from it" in last.err
            assert "these are the endpoints it last reported (policy revoke-after 2m)" in last.err
            assert await stream_last_seq(hub) == before, "a write at east reached the hub"
            # The site says how stale its copy of the hub's log is.
            status = skyctl("site", "status", "-o", "json", url=east)
            assert status.code == 0, status.err
            told = json.loads(status.out)
            assert told["link"] == "down" and told["silentSeconds"] > EAST_LEASE_S, told
            assert told["serviceLog"]["lastSequence"] == before
            during = skyctl(
                "create", "service", "during", "-n", ns, "-s", "app=x", "-p", "80", url=hub
            )
            assert during.code == 0, during.err
        finally:
            sites.link.heal()
        healed = await until("east live again", lambda: _live(hub, "east"), timeout=60)

        async def site_hears_hub() -> bool:
            status = skyctl("site", "status", url=east)
            return status.code == 0 and "link up: hub last heard" in status.out

        await until("east hears the hub again", site_hears_hub, timeout=60)
        await until("the change made during the cut at east", lambda: mirrored("during"), 30)

        async def heard_at_hub() -> bool:
            then = _served(hub, ns, inside, site="east")
            later = _served(hub, ns, after, site="east")
            return "10.7.0.2:8080" in then and "10.7.0.2:8080" not in later

        await until("the cut's join and leave at the hub", heard_at_hub, timeout=60)
        then = _served(hub, ns, inside, site="east")
        assert "10.7.0.1:8080" in then, then  # the task that lived through the cut
        # None doubled: the hub holds the site's transitions of the brief task, once each.
        subject = f"skyflow.member.{ns}.brief"
        assert await _count(east, "SKYFLOW_MEMBERSHIP", subject) == 2
        assert await _count(hub, "SKYFLOW_SITE_MEMBERSHIP_east", f"site.east.{subject}") == 2
        print(f"\nsites: east stale {first_stale:.1f} s into a 4 s cut; live {healed:.1f} s after")


async def _live(url: str, name: str) -> bool:
    return bool(states(url)[name]["status"]["state"] == "live")


async def _all_live(url: str) -> bool:
    return all(s["status"]["state"] == "live" for s in states(url).values())


async def _recorded_at(url: str, ns: str, address: str, *, present: bool = True) -> str:
    """A moment at which the site's own history says ``address`` served ``web`` (or,
    not ``present``, no longer did), once it does."""
    found = ""

    async def recorded() -> bool:
        nonlocal found
        moment = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        result = skyctl("get", "endpoints", "web", "-n", ns, "--at", moment, url=url)
        if result.code == 0 and (address in result.out) == present:
            found = moment
            return True
        return False

    await until(f"{address} {'in' if present else 'out of'} east's history", recorded, 15)
    return found


def _served(url: str, ns: str, moment: str, *, site: str) -> str:
    result = skyctl("get", "endpoints", "web", "-n", ns, "--at", moment, "--site", site, url=url)
    assert result.code == 0, result.err
    return result.out


async def _count(url: str, stream: str, subject: str) -> int:
    async with raw_nats(url) as nc:
        info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)


async def test_a_site_silent_past_its_grace_is_revoked(sites: Sites, ns: str) -> None:
    """Under revoke-after GRACE, a site silent for GRACE is revoked: the hub serves none
    of its endpoints, and says why; heard again, it is live."""
    hub, east = sites.hub, sites.east
    made = skyctl(
        "site", "init", "east", "--hub", hub, "--lease", "2s", "--policy", "revoke-after 3s",
        url=east,
    )  # fmt: skip
    assert made.code == 0, made.err
    created = skyctl("create", "service", "web", "-n", ns, "-s", "app=web", "-p", "80", url=hub)
    assert created.code == 0, created.err
    try:
        await until("both sites live", lambda: _all_live(hub), timeout=60)
        sites.link.cut()
        try:

            async def revoked() -> bool:
                return bool(states(hub)["east"]["status"]["state"] == "revoked")

            took = await until("east revoked", revoked, timeout=15)
            assert took >= 2.0  # (silent for its grace: 3 s, less the heartbeat's second)
            served = skyctl("get", "endpoints", "web", "-n", ns, "--site", "east", url=hub)
            assert served.code == 0, served.err
            assert "warning: site east is revoked" in served.err
            assert "its endpoints are not served (policy revoke-after 3s)" in served.err
            table = skyctl("get", "sites", "east", "--no-headers", url=hub).out.split()
            assert table[2] == "down"
            assert table[6:] == ["revoked", "revoke-after", "3s"]
        finally:
            sites.link.heal()
        await until("east live again", lambda: _live(hub, "east"), timeout=60)
    finally:
        restored = skyctl("site", "init", "east", "--hub", hub, "--lease", "2s", url=east)
        assert restored.code == 0, restored.err
