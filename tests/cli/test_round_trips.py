"""How many requests a one-shot command sends the server, counted on a server of the
test's own by a subscriber to every API subject: a command should make the round trips
it needs, and ``get service NAME -o name`` needs one (docs/operations.md states the count
of each command)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from registry.jetstream.server import NatsServer
from tests.helpers import raw_nats, skyctl
from tests.servers import PASSWORDS, auth_server

# A consumer's name, a reply inbox: what differs from run to run.
_VARYING = re.compile(r"(CONSUMER\.(?:CREATE|DELETE)\.[A-Z_]+)(?:\.\w+)?$")


async def requests_of(
    url: str, *args: str, env: dict[str, str] | None = None, spy: str | None = None
) -> list[str]:
    """The API requests (``$JS.API.>``, ``$SYS.REQ.>``) and stream writes (``skyflow.>``)
    the command ``skyctl ARGS`` sent, in order, consumer names left out (``spy``: the URL
    the subscriber connects with, if not ``url``)."""
    seen: list[str] = []

    async def note(msg: Any) -> None:
        seen.append(_VARYING.sub(r"\1", msg.subject))

    async with raw_nats(spy or url) as nc:
        for subject in ("$JS.API.>", "$SYS.REQ.>", "skyflow.>"):
            await nc.subscribe(subject, cb=note)
        await nc.flush()
        result = skyctl(*args, url=url, env=env)
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
        assert table[0] == one[0] and len(table) <= 4, table
        assert "$JS.API.STREAM.INFO.SKYFLOW_SERVICES" not in table

    run(check, fresh_server)


def test_a_write_checks_the_stream_first(fresh_server: NatsServer) -> None:
    """Invariant 6: every command that writes checks the stream first. (A server that
    authenticates nobody is not asked who writes: it would name no one.)"""

    async def check(url: str) -> None:
        assert skyctl("create", "svc", "first", url=url).code == 0  # makes the streams
        created = await requests_of(url, "create", "svc", "web", "-s", "app=web")
        deleted = await requests_of(url, "delete", "svc", "web")
        for sent in (created, deleted):
            assert "$SYS.REQ.USER.INFO" not in sent, sent
            info = sent.index("$JS.API.STREAM.INFO.SKYFLOW_SERVICES")
            assert info < sent.index("skyflow.svc.default.web"), sent
        assert len(created) <= 7 and len(deleted) <= 5, (created, deleted)

    run(check, fresh_server)


def test_a_named_user_without_an_inbox_prefix_asks_who_it_is(tmp_path: Path) -> None:
    """Who am I decides whether to connect again with the user's own inbox prefix, so a
    user who chose none asks at once; one who chose it (or has no name) does not."""
    admin = {"NATS_USER": "admin", "NATS_PASSWORD": PASSWORDS["admin"]}
    viewer = {
        "NATS_USER": "viewer",
        "NATS_PASSWORD": PASSWORDS["viewer"],
        "NATS_INBOX_PREFIX": "_INBOX_viewer",
    }

    async def check(url: str) -> None:
        spy = url.replace("://", f"://admin:{PASSWORDS['admin']}@")
        assert skyctl("init", url=url, env=admin).code == 0
        assert skyctl("create", "svc", "web", url=url, env=admin).code == 0
        get = ("get", "svc", "web", "-o", "name")
        one = "$JS.API.DIRECT.GET.SKYFLOW_SERVICES.skyflow.svc.default.web"
        asked = await requests_of(url, *get, env=admin, spy=spy)
        assert asked == ["$SYS.REQ.USER.INFO", one]
        assert await requests_of(url, *get, env=viewer, spy=spy) == [one]

    with auth_server(tmp_path) as server:
        asyncio.run(check(server.url))


def test_apply_of_many_services_reads_them_in_one_request(
    fresh_server: NatsServer, tmp_path: Path
) -> None:
    """``apply -f`` of 50 new services reads their current state in one batched direct
    get (a multi-last), not one request per service, and writes each service once."""
    manifests = "---\n".join(
        "apiVersion: skyflow.io/v1\nkind: Service\n"
        f"metadata:\n  name: web-{i}\nspec:\n  selector:\n    app: web-{i}\n"
        "  ports:\n  - port: 80\n"
        for i in range(50)
    )
    path = tmp_path / "many.yaml"
    path.write_text(manifests)

    async def check(url: str) -> None:
        assert skyctl("create", "svc", "first", url=url).code == 0  # makes the streams
        sent = await requests_of(url, "apply", "-f", str(path))
        gets = [s for s in sent if s.startswith("$JS.API.DIRECT.GET.")]
        # One multi-last for the 50 services, one for the addresses they would take, and
        # the namespace's quota and the address ranges: never one per service.
        assert len(gets) <= 4, gets
        assert not [s for s in gets if ".skyflow.svc." in s], gets
        services = [s for s in sent if s.startswith("skyflow.svc.")]
        assert sorted(services) == sorted(f"skyflow.svc.default.web-{i}" for i in range(50))
        assert len(sent) <= 2 * 50 + 10, sent

    run(check, fresh_server)
