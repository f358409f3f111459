"""How many requests a one-shot command sends the server, counted on a server of the
test's own by a subscriber to every API subject: a command should make the round trips
it needs, and ``get service NAME -o name`` needs one (docs/operations.md states the count
of each command)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from typing import Any

from registry.jetstream.server import NatsServer
from tests.helpers import raw_nats, skyctl

# A consumer's name, a reply inbox: what differs from run to run.
_VARYING = re.compile(r"(CONSUMER\.(?:CREATE|DELETE)\.[A-Z_]+)(?:\.\w+)?$")


async def requests_of(url: str, *args: str) -> list[str]:
    """The API requests (``$JS.API.>``, ``$SYS.REQ.>``) and stream writes (``skyflow.>``)
    the command ``skyctl ARGS`` sent, in order, consumer names left out."""
    seen: list[str] = []

    async def note(msg: Any) -> None:
        seen.append(_VARYING.sub(r"\1", msg.subject))

    async with raw_nats(url) as nc:
        for subject in ("$JS.API.>", "$SYS.REQ.>", "skyflow.>"):
            await nc.subscribe(subject, cb=note)
        await nc.flush()
        result = skyctl(*args, url=url)
        assert result.code == 0, result.err
        await nc.flush()  # everything the command sent has reached this subscriber
        await asyncio.sleep(0.05)  # and its callbacks have run
    return seen


def run(check: Callable[[str], Coroutine[Any, Any, None]], server: NatsServer) -> None:
    asyncio.run(check(server.url))


def test_get_name_asks_the_server_once(fresh_server: NatsServer) -> None:
    async def check(url: str) -> None:
        assert skyctl("create", "svc", "web", "-s", "app=web", url=url).code == 0
        one = ["$JS.API.DIRECT.GET.SKYFLOW_SERVICES.skyflow.svc.default.web"]
        assert await requests_of(url, "get", "svc", "web", "-o", "name") == one
        assert await requests_of(url, "get", "svc", "web", "-o", "json") == one
        # The table's ENDPOINTS column reads the tasks the selector picks, too (from the
        # liveness stream, which the first such read makes if no announce has).
        assert skyctl("get", "svc", "web", url=url).code == 0
        table = await requests_of(url, "get", "svc", "web")
        assert table[0] == one[0] and len(table) <= 5, table
        assert "$JS.API.STREAM.INFO.SKYFLOW_SERVICES" not in table

    run(check, fresh_server)


def test_a_write_checks_the_stream_and_asks_who_writes(fresh_server: NatsServer) -> None:
    """Invariant 6: every command that writes checks the stream first; the event names
    its actor, which the server is asked for."""

    async def check(url: str) -> None:
        assert skyctl("create", "svc", "first", url=url).code == 0  # makes the streams
        created = await requests_of(url, "create", "svc", "web", "-s", "app=web")
        deleted = await requests_of(url, "delete", "svc", "web")
        for sent in (created, deleted):
            assert sent.count("$SYS.REQ.USER.INFO") == 1, sent
            info = sent.index("$JS.API.STREAM.INFO.SKYFLOW_SERVICES")
            assert info < sent.index("skyflow.svc.default.web"), sent
        assert len(created) <= 8 and len(deleted) <= 6, (created, deleted)

    run(check, fresh_server)
