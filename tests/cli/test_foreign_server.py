"""A read pointed at a JetStream server that is no registry says so and leaves nothing
behind: only writes (and ``skyctl init``) create the registry's streams."""

from __future__ import annotations

import asyncio
import json

from registry.jetstream.server import NatsServer
from tests.helpers import raw_nats, skyctl

READS = [
    ["get", "svc"],
    ["get", "svc", "web", "-o", "yaml"],
    ["get", "endpoints", "-A"],
    ["get", "tasks"],
    ["describe", "svc", "web"],
    ["history", "svc", "web"],
    ["events", "-A"],
    ["audit", "verify"],
    ["get", "svc", "--at", "1"],
]


async def _streams(url: str) -> list[str]:
    async with raw_nats(url) as nc:
        reply = await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=5)
        return list(json.loads(reply.data).get("streams") or [])


def test_reads_on_a_foreign_server_say_so_and_create_nothing(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    for args in READS:
        got = skyctl(*args, url=url)
        assert got.code == 3 and got.out == "", (args, got)
        assert got.err.count("\n") == 1 and "no SkyFlow registry at" in got.err, (args, got.err)
        assert "skyctl init" in got.err and "Traceback" not in got.err
    assert asyncio.run(_streams(url)) == []
    # A write makes the registry (as skyctl init does), and reads then work.
    assert skyctl("create", "svc", "web", url=url).code == 0
    assert skyctl("get", "svc", "web", "-o", "name", url=url).out == "service/web\n"
