"""``skyctl get endpoints -w`` at a hub, on real servers (``tests/sitesetup.py``: a hub and
two sites, east's leaf link through a forwarder the test cuts): first the rows ``get
endpoints`` lists, with SITE and LEASE, then a row for each change, the hub's own and each
site's; a cut site's row turning stale (with its age) and then revoked (DELETED, no
endpoints); ``--site`` watching one site's rows."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable

from registry.client import Registry
from tests.helpers import Lines, running, skyctl, until
from tests.sitesetup import Running as Sites
from tests.sitesetup import create_web, web_task

STALE = re.compile(r"stale\(\d+\.\ds\)")


def listed(hub: str, *flags: str) -> list[list[str]]:
    """``get endpoints`` at the hub: its rows, NAME to ENDPOINTS (AGE left out)."""
    found = skyctl("get", "endpoints", *flags, url=hub)
    assert found.code == 0, found.err
    return [line.split()[:4] for line in found.out.splitlines()[1:]]


def rows(lines: Lines) -> list[list[str]]:
    """A table watch's lines so far, split into cells (the header first)."""
    return [line.split() for _, line in list(lines.lines)]


async def row(lines: Lines, check: Callable[[list[str]], bool], timeout: float = 30) -> int:
    """The index of the first row passing ``check``, once there is one."""

    async def found() -> bool:
        return any(check(r) for r in rows(lines))

    await until(f"a row like that in {[line for _, line in lines.lines]}", found, timeout)
    return next(i for i, r in enumerate(rows(lines)) if check(r))


async def ended_cleanly(lines: Lines, stop: signal.Signals = signal.SIGTERM) -> str:
    """SIGTERM (or Ctrl-C's SIGINT), then the watch's exit: 0, no traceback; its stderr."""
    lines.proc.send_signal(stop)
    _, err = lines.proc.communicate(timeout=15)
    assert lines.proc.returncode == 0, err
    assert "Traceback" not in err, err
    return err


async def test_a_watch_at_the_hub_lists_every_site_then_each_change(
    sites: Sites, recorders: None, ns: str
) -> None:
    hub = sites.hub
    create_web(hub, ns)
    async with (
        await Registry.connect(hub) as at_hub,
        await Registry.connect(sites.east) as at_east,
        await Registry.connect(sites.west) as at_west,
        at_hub.announce(web_task(ns, "web-hub", "10.0.0.1"), ttl=10),
        at_west.announce(web_task(ns, "web-west", "10.2.0.1"), ttl=10),
    ):
        first = [
            ["web", "<hub>", "-", "10.0.0.1:8080"],
            ["web", "east", "live", "<none>"],
            ["web", "west", "live", "10.2.0.1:8080"],
        ]

        async def listed_first() -> bool:
            return listed(hub, "-n", ns) == first

        await until("the hub lists the hub's and west's tasks", listed_first)
        async with (
            running("get", "endpoints", "-w", "-n", ns, url=hub, ready="EVENT") as watch,
            running(
                "get", "endpoints", "-w", "-n", ns, "-o", "json", url=hub, ready="{"
            ) as as_json,
            running(
                "get", "endpoints", "-w", "-n", ns, "--site", "west", url=hub, ready="EVENT"
            ) as at_west_only,
        ):
            # First, exactly what the listing shows, each row ADDED.
            await row(watch, lambda r: r[:3] == ["ADDED", "web", "west"])
            assert rows(watch)[0] == ["EVENT", "NAME", "SITE", "LEASE", "ENDPOINTS", "AGE"]
            assert [r[1:5] for r in rows(watch)[1:]] == listed(hub, "-n", ns) == first
            await row(at_west_only, lambda r: r[:1] == ["ADDED"])
            assert [r[1:5] for r in rows(at_west_only)[1:]] == [first[2]]
            assert [r[1:5] for r in rows(at_west_only)[1:]] == listed(
                hub, "-n", ns, "--site", "west"
            )
            await as_json.wait_for(lambda line: '"west"' in line, timeout=30)
            objects = [json.loads(line) for _, line in as_json.lines[:3]]
            assert [o["type"] for o in objects] == ["ADDED"] * 3
            assert [o["object"]["metadata"]["annotations"]["skyflow.io/site"] for o in objects] == [
                "<hub>",
                "east",
                "west",
            ]

            # A task announced at east: a new east row, live, with it.
            async with at_east.announce(web_task(ns, "web-east", "10.1.0.1"), ttl=10):
                east = ["MODIFIED", "web", "east", "live", "10.1.0.1:8080"]
                await row(watch, lambda r: r[:5] == east)

                def east_in_json(line: str) -> bool:
                    event = json.loads(line)
                    meta = event["object"]["metadata"]
                    addresses = [
                        a["ip"] for s in event["object"]["subsets"] for a in s["addresses"]
                    ]
                    return bool(
                        event["type"] == "MODIFIED"
                        and meta["annotations"]["skyflow.io/site"] == "east"
                        and addresses == ["10.1.0.1"]
                    )

                await as_json.wait_for(east_in_json, timeout=30)
                # The hub's own change: a row with its SITE, <hub>.
                async with at_hub.announce(web_task(ns, "web-hub-2", "10.0.0.2"), ttl=10):
                    both = "10.0.0.1:8080,10.0.0.2:8080"
                    await row(watch, lambda r: r[:5] == ["MODIFIED", "web", "<hub>", "-", both])
                    # West's change, seen by the watch of west's rows.
                    async with at_west.announce(web_task(ns, "web-west-2", "10.2.0.2"), ttl=10):
                        both = "10.2.0.1:8080,10.2.0.2:8080"
                        west = ["MODIFIED", "web", "west", "live", both]
                        await row(at_west_only, lambda r: r[:5] == west)
                        await row(watch, lambda r: r[:5] == west)
            # --site west: west's rows only, none of the hub's or east's.
            assert {r[2] for r in rows(at_west_only)[1:]} == {"west"}, rows(at_west_only)
            assert rows(watch).count(rows(watch)[0]) == 1  # one header
            for lines in (watch, at_west_only):
                await ended_cleanly(lines)
            await ended_cleanly(as_json, signal.SIGINT)


async def test_a_cut_sites_row_turns_stale_then_revoked(
    sites: Sites, recorders: None, ns: str
) -> None:
    hub = sites.hub
    create_web(hub, ns)
    async with (
        await Registry.connect(sites.east) as at_east,
        at_east.announce(web_task(ns, "web-east", "10.1.0.9"), ttl=10),
    ):
        live = ["web", "east", "live", "10.1.0.9:8080"]

        async def east_live() -> bool:
            return live in listed(hub, "-n", ns)

        await until("the hub lists east's task", east_live)
        async with (
            running("get", "endpoints", "-w", "-n", ns, url=hub, ready="EVENT") as watch,
            running(
                "get", "ep", "-w", "-n", ns, "--site", "east", "-o", "json", url=hub, ready="{"
            ) as as_json,
        ):
            await row(watch, lambda r: r[:5] == ["ADDED", *live])
            sites.link.cut()
            try:
                stale = await row(
                    watch,
                    lambda r: r[:3] == ["MODIFIED", "web", "east"] and bool(STALE.fullmatch(r[3])),
                )
                assert rows(watch)[stale][4] == "10.1.0.9:8080", rows(watch)
                revoked = ["DELETED", "web", "east", "revoked", "<none>"]
                gone = await row(watch, lambda r: r[:5] == revoked, timeout=30)
                assert gone > stale
                # Never live in between: only the stale row, then the revoked one.
                east_rows = [r for r in rows(watch)[stale:gone] if r[2:3] == ["east"]]
                assert [r[0] for r in east_rows] == ["MODIFIED"], rows(watch)

                def revoked_in_json(line: str) -> bool:
                    event = json.loads(line)
                    annotations = event["object"]["metadata"]["annotations"]
                    return bool(
                        event["type"] == "DELETED"
                        and annotations["skyflow.io/lease"] == "revoked"
                        and event["object"]["subsets"] == []
                    )

                await as_json.wait_for(revoked_in_json, timeout=10)
                types = [json.loads(line)["type"] for _, line in as_json.lines]
                assert types == ["ADDED", "MODIFIED", "DELETED"], types
                stale_event = json.loads(as_json.lines[1][1])
                assert stale_event["object"]["metadata"]["annotations"]["skyflow.io/lease"] == (
                    "stale"
                )
            finally:
                sites.link.heal()
            # The hub's own row was never touched by east's cut.
            assert [r[0] for r in rows(watch)[1:] if r[2] == "<hub>"] == ["ADDED"]
            err = await ended_cleanly(watch)
            assert "warning: site east is stale" in err, err
            assert "warning: site east is revoked" in err, err
            await ended_cleanly(as_json)


async def test_bad_input_and_servers_without_sites(sites: Sites, ns: str) -> None:
    missing = skyctl("get", "endpoints", "-w", "-n", ns, "--site", "north", url=sites.hub)
    assert (missing.code, missing.out) == (1, "")
    assert missing.err == 'error: site "north" not found (no skyctl site init for it at this hub)\n'
    bad = skyctl("get", "endpoints", "-w", "--site", "No_Such", url=sites.hub)
    assert bad.code != 0 and bad.out == ""
    assert len(bad.err.splitlines()) == 1 and '"No_Such"' in bad.err, bad.err
    # A server with no sites of its own (west) watches as it always has: no SITE column.
    create_web(sites.hub, ns)
    async with running("get", "endpoints", "-w", "-A", url=sites.west, ready="EVENT") as watch:
        assert rows(watch)[0] == ["EVENT", "NAMESPACE", "NAME", "ENDPOINTS", "AGE"]
    # One service at one site, asked of the hub: its row there, with SITE and LEASE.
    one = ("get", "endpoints", "web", "-n", ns, "--site", "west", "-w")
    async with running(*one, url=sites.hub, ready="EVENT") as watch:
        assert await row(watch, lambda r: r[:1] == ["ADDED"]) == 1
        assert rows(watch)[1][1:5] == ["web", "west", "live", "<none>"]
