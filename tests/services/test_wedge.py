"""One unreadable message as a service's last event must not wedge the
service for everyone; an explicit, recorded way out exists."""

from __future__ import annotations

import json

from tests.helpers import last_seq, raw_publish, skyctl, stream_last_seq


async def test_delete_force_is_the_way_out_of_an_unreadable_last_event(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "stuck", "-n", ns, url=url).code == 0
    poison = await raw_publish(url, f"skyflow.svc.{ns}.stuck", b"\xc1 not msgpack")

    refused = skyctl("delete", "svc", "stuck", "-n", ns, url=url)
    assert refused.code == 1 and "--force" in refused.err.splitlines()[-1]
    assert refused.err.splitlines()[-1].startswith('error: service "stuck"')
    assert skyctl("create", "svc", "stuck", "-n", ns, url=url).code == 1

    before = await stream_last_seq(url)
    forced = skyctl("delete", "svc", "stuck", "-n", ns, "--force", url=url)
    assert forced.code == 0, forced.err
    assert forced.out == f"service/stuck deleted (forced over unreadable seq {poison.seq})\n"
    # The forced delete and the release of the cluster IP its unreadable event hid.
    assert await stream_last_seq(url) == before + 2

    items = json.loads(skyctl("history", "svc", "stuck", "-n", ns, "-o", "json", url=url).out)
    event = items[-1]["event"]
    assert event["type"] == "ServiceForceDeleted"
    assert event["overrides"]["seq"] == poison.seq and "not msgpack" in event["overrides"]["reason"]
    assert items[-1]["service"] is None
    # Replaced: the service can be created again, and reads like any other.
    assert skyctl("create", "svc", "stuck", "-n", ns, "-p", "81", url=url).code == 0
    assert " 81/TCP " in skyctl("get", "svc", "stuck", "-n", ns, url=url).out


def test_force_is_refused_when_nothing_is_unreadable(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "fine", "-n", ns, url=url).code == 0
    before = last_seq(url)
    # A readable service is deleted the ordinary way even with --force...
    assert skyctl("delete", "svc", "fine", "-n", ns, "--force", url=url).out == (
        "service/fine deleted\n"
    )
    # ...and one that is not there is still not there.
    gone = skyctl("delete", "svc", "fine", "-n", ns, "--force", url=url)
    assert gone.code == 1 and "not found" in gone.err
    assert last_seq(url) == before + 2  # the delete and its cluster IP's release
