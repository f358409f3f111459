"""The web UI's audit pages over HTTP: ``/audit`` is ``audit verify``'s result for the
whole log (the same lines, the same summary: one implementation, ``cli/auditviews.py``),
``/services/NS/NAME/audit`` that of one service's chain; a clean log holds, a log written
around the registry shows its first break; each person sees what the server lets them."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cli.connection import Connection
from cli.webapp import make_app
from events import Service, encode, new_event_id, utc_now
from events.service import ServiceCreated
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.services.decisions import chain_hash
from registry.services.proof import Trust
from tests.helpers import raw_publish, skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server
from tests.ui.support import HOSTILE, as_admin, as_user, browsing, sign_in, signed_in


def created(prev: str | None, name: str = "web") -> bytes:
    """A ServiceCreated as a forger writes it, straight to the stream."""
    event = ServiceCreated(
        id=new_event_id(), time=utc_now(), actor="mallory@h", prev=prev, service=Service(name=name)
    )
    return encode(event)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("ui-audit")) as running:
        as_admin(
            running.url,
            ("init", *INIT_TEAMS),
            ("create", "svc", "web", "-n", "shop", "-s", "app=web", "-p", "80:8080"),
            ("label", "svc", "web", "-n", "shop", "tier=front"),
        )
        yield running


@pytest.fixture
async def viewer(server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(server.url, "viewer") as client:
        yield client


def verdict(page: httpx.Response) -> str:
    found = re.search(r'<p id="verdict" class="(\w+)">([^<]*)</p>', page.text)
    assert found is not None, page.text
    return html.unescape(found.group(2))


async def test_a_clean_log_holds_as_the_cli_says(
    server: NatsServer, viewer: httpx.AsyncClient
) -> None:
    cli = skyctl("audit", "verify", *as_user("viewer"), url=server.url)
    assert cli.code == 0, cli.err
    page = await viewer.get("/audit")
    assert page.status_code == 200, page.text
    assert verdict(page) == cli.out.strip().splitlines()[-1]
    assert verdict(page).endswith(": every link holds")
    assert 'id="first-break"' not in page.text and 'class="ok"' in page.text
    assert "<tr><td>broken</td><td>0</td></tr>" in page.text
    assert "Read without a trust file" in page.text
    one = await viewer.get("/services/shop/web/audit")
    assert one.status_code == 200, one.text
    assert verdict(one) == "checked 2 events in 1 chain (1 service): every link holds"
    service = await viewer.get("/services/shop/web")
    assert 'href="/services/shop/web/audit"' in service.text
    assert 'href="/audit"' in (await viewer.get("/")).text
    missing = await viewer.get("/services/shop/nope/audit")
    assert missing.status_code == 404
    assert html.escape('service "nope" not found in namespace "shop"') in missing.text


async def test_each_person_sees_what_the_server_allows(server: NatsServer) -> None:
    """As the CLI for each role (every role of nats-server-auth.conf may read the log
    today; a refusal would be the CLI's line, 403)."""
    seen = {}
    for user in PASSWORDS:
        cli = skyctl("audit", "verify", *as_user(user), url=server.url)
        async with browsing(make_app(Connection(server=server.url))) as client:
            await sign_in(client, user)
            page = await client.get("/audit")
        seen[user] = page.status_code
        if cli.code == 0:
            assert page.status_code == 200, (user, page.text)
            assert verdict(page) == cli.out.strip().splitlines()[-1]
        else:
            assert page.status_code == 403, (user, page.text)
            said = cli.err.strip().splitlines()[-1].removeprefix("error: ")
            assert html.escape(said) in page.text, (user, cli.err, page.text)
            assert 'id="verdict"' not in page.text
    assert seen["viewer"] == seen["admin"] == 200, seen


async def test_a_broken_log_shows_its_first_break(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    subject = "skyflow.svc.default.web"
    async with await Registry.connect(url) as registry:
        for name in ("web", "db"):
            await registry.create(Service(name=name))
    forged = await raw_publish(url, subject, created(chain_hash(b"something else")))
    await raw_publish(url, "skyflow.svc.default.db", created(None, "db"))
    cli = skyctl("audit", "verify", url=url)
    assert cli.code == 1
    broken = [line for line in cli.out.splitlines() if line.startswith("BROKEN")]
    # The two forged events, and the addresses the log has their services hold.
    assert len(broken) >= 3
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        page = await http.get("/audit")
        web = await http.get("/services/default/web/audit")
        db = await http.get("/services/default/db/audit")
    assert page.status_code == 200, page.text
    assert verdict(page) == cli.err.strip().splitlines()[-1]
    assert verdict(page).endswith(f": {len(broken)} breaks") and 'class="error"' in page.text
    first = broken[0].removeprefix("BROKEN ")
    assert f'<p id="first-break" class="error">First break: {html.escape(first)}</p>' in page.text
    assert first.startswith(f"seq {forged.seq} {subject}: links to ")
    for line in broken:
        assert html.escape(line) in page.text
    assert f"<tr><td>broken</td><td>{len(broken)}</td></tr>" in page.text
    # One service's chain: its own break only (the address ledger is the whole log's).
    assert web.status_code == 200, web.text
    assert verdict(web) == "checked 2 events in 1 chain (1 service): 1 break"
    assert html.escape(broken[0]) in web.text and html.escape(broken[1]) not in web.text
    assert html.escape(broken[1]) in db.text and html.escape(broken[0]) not in db.text


async def test_an_acknowledged_break_and_hostile_values(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await registry.create(Service(name="web"))
    forged = await raw_publish(url, "skyflow.svc.default.web", created(None))
    env = {"LOGNAME": HOSTILE[1], "USER": HOSTILE[1]}
    done = skyctl("audit", "acknowledge", str(forged.seq), "--reason", HOSTILE[0], url=url, env=env)
    assert done.code == 0, done.err
    cli = skyctl("audit", "verify", url=url)
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        page = await http.get("/audit")
    assert page.status_code == 200, page.text
    # The forged create took web's address away: the ledger's break is not acknowledged.
    assert cli.code == 1
    assert verdict(page) == cli.err.strip().splitlines()[-1]
    assert verdict(page).endswith(": 1 break, 1 acknowledged")
    assert "<tr><td>acknowledged</td><td>1</td></tr>" in page.text
    acknowledged = [line for line in cli.out.splitlines() if line.startswith("ACKNOWLEDGED")]
    assert len(acknowledged) == 1 and html.escape(acknowledged[0]) in page.text
    for value in HOSTILE:
        assert value not in page.text
        assert html.escape(value) in page.text


async def test_with_a_trust_file_every_unverified_actor_is_listed(
    server: NatsServer, tmp_path: Path
) -> None:
    """``skyctl ui --trust FILE``: the audit as ``audit verify --trust FILE`` has it (no
    one signs on this server, so every actor is unverified)."""
    keys = tmp_path / "none.keys"
    keys.write_text("# no one signs on this server\n")
    cli = skyctl("audit", "verify", "--trust", str(keys), *as_user("viewer"), url=server.url)
    assert cli.code == 1
    unproven = [line for line in cli.out.splitlines() if line.startswith("UNPROVEN")]
    assert unproven
    app = make_app(Connection(server=server.url), trust=Trust.from_file(keys))
    async with browsing(app) as client:
        await sign_in(client, "viewer")
        page = await client.get("/audit")
    assert page.status_code == 200, page.text
    said = cli.err.strip().splitlines()
    assert verdict(page) == said[-1] and verdict(page).endswith(
        f"{len(unproven)} unverified actors"
    )
    assert f'<p id="actors">{html.escape(said[0])}</p>' in page.text  # actors: ...
    for line in unproven:
        assert html.escape(line) in page.text
    assert "Read without a trust file" not in page.text
    assert 'id="first-break"' not in page.text
