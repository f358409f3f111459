"""The web UI's time travel over HTTP, against a real nats-server with users: ``?at=`` (a
sequence, a time or a while ago, read as ``get --at`` reads it) renders the services
table and a service's pages as the registry was then, a service deleted since included,
with a banner, without the live feed, every link keeping the moment; who served a
service then comes from the membership history (``skyctl record``)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from cli.connection import Connection
from cli.webapp import make_app
from events import Service
from events.task import Task
from registry.client import Registry
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from registry.services.when import AtTime
from tests.helpers import Lines, skyctl, start, stream_last_seq, until
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server
from tests.ui.support import HOSTILE, as_user, browsing, hostile_actors, sign_in, signed_in


async def log_end(url: str) -> int:
    """The log's last sequence, read as the admin (the server has users)."""
    admin = Credentials(user="admin", password=PASSWORDS["admin"])
    async with await Registry.connect(url, credentials=admin) as registry:
        return await registry.log.last_sequence()


@dataclass(frozen=True)
class Log:
    """The module's server, and the sequences its story passed through."""

    server: NatsServer
    before: str  # a time after init, before any service
    web: int  # web created
    gone: int  # gone created, labelled tier=old
    deleted: int  # gone deleted


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    with auth_server(tmp_path_factory.mktemp("ui-travel")) as running:

        def run(*step: str) -> int:
            done = skyctl(*step, *as_user("admin"), url=running.url)
            assert done.code == 0, (step, done.err)
            return asyncio.run(log_end(running.url))

        run("init", *INIT_TEAMS)
        before = datetime.now(UTC).isoformat(timespec="microseconds")
        web = run("create", "svc", "web", "-n", "shop", "-s", "app=web", "-p", "80:8080")
        run("create", "svc", "gone", "-n", "shop", "-s", "app=gone", "-p", "81:8081")
        gone = run("label", "svc", "gone", "-n", "shop", "tier=old")
        deleted = run("delete", "svc", "gone", "-n", "shop")
        yield Log(running, before, web, gone, deleted)


@pytest.fixture
async def viewer(log: Log) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(log.server.url, "viewer") as client:
        yield client


def row(name: str, at: int) -> str:
    return f'<td><a href="/services/shop/{name}?at={at}">{name}</a></td>'


async def test_the_past_table_has_what_was_there_then(log: Log, viewer: httpx.AsyncClient) -> None:
    early = await viewer.get("/services/table", params={"at": log.before})
    assert early.status_code == 200, early.text
    assert "No services found." in early.text
    then = await viewer.get("/services/table", params={"at": log.gone})
    assert row("web", log.gone) in then.text and row("gone", log.gone) in then.text
    # No recorder ran here: no ENDPOINTS (as get svc --at), and a line saying why.
    assert "<th>ENDPOINTS</th>" not in then.text and "<th>SELECTOR</th>" in then.text
    page = await viewer.get("/", params={"at": log.gone})
    assert "endpoints: warning: the membership history starts at" in page.text
    at_web = await viewer.get("/", params={"at": log.web})
    assert row("web", log.web) in at_web.text and "gone" not in at_web.text
    now = await viewer.get("/services/table")
    assert '<a href="/services/shop/web">web</a>' in now.text and "gone" not in now.text
    # The CLI's own table at that moment: the same services, the same columns.
    cli = skyctl(
        "get", "svc", "-A", "-o", "wide", "--at", str(log.gone), *as_user("viewer"),
        url=log.server.url,
    )  # fmt: skip
    assert cli.code == 0, cli.err
    for line in cli.out.splitlines()[1:]:
        cells = line.split()
        assert f"<td>{cells[0]}</td>" in then.text and f">{cells[1]}</a>" in then.text
    # A time reads as a sequence does: now as a time is the registry now.
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    as_time = await viewer.get("/services/table", params={"at": stamp})
    assert f'href="/services/shop/web?{urlencode({"at": stamp})}"' in as_time.text
    ago = await viewer.get("/services/table", params={"at": "1s"})
    assert ago.status_code == 200 and "gone" not in ago.text


async def test_a_deleted_service_shows_as_it_was(log: Log, viewer: httpx.AsyncClient) -> None:
    gone = await viewer.get("/services/shop/gone")
    assert gone.status_code == 404
    page = await viewer.get("/services/shop/gone", params={"at": log.gone})
    assert page.status_code == 200, page.text
    assert "tier=old" in page.text and "app=gone" in page.text
    assert re.search(rf"Revision: +{log.gone}\n", page.text), page.text
    assert "ServiceDeleted" not in page.text  # its events up to then
    # No recorder ran on this server: said as get endpoints --at says it.
    cli = skyctl(
        "get", "endpoints", "gone", "-n", "shop", "--at", str(log.gone), *as_user("viewer"),
        url=log.server.url,
    )  # fmt: skip
    assert cli.code == 0 and "nobody is known to have served" in cli.err
    assert html.escape(cli.err.strip()) in page.text
    history = await viewer.get("/services/shop/gone/history", params={"at": log.gone})
    assert history.status_code == 200, history.text
    assert "ServiceCreated" in history.text and "ServiceUpdated" in history.text
    assert "ServiceDeleted" not in history.text
    assert "ServiceDeleted" in (await viewer.get("/services/shop/gone/history")).text
    before = await viewer.get("/services/shop/gone", params={"at": log.web})
    assert before.status_code == 404
    assert html.escape('service "gone" not found in namespace "shop"') in before.text


async def test_a_past_page_says_so_is_not_live_and_its_links_keep_the_moment(
    log: Log, viewer: httpx.AsyncClient
) -> None:
    last = await log_end(log.server.url)
    for path in ("/", "/services/shop/gone", "/services/shop/gone/history"):
        page = await viewer.get(path, params={"at": log.gone})
        assert page.status_code == 200, (path, page.text)
        banner = re.search(
            r'<p id="banner">As the registry was at (\S+) \(log sequence (\d+)\)', page.text
        )
        assert banner is not None, page.text
        assert int(banner.group(2)) == log.gone
        datetime.fromisoformat(banner.group(1))  # a time
        assert "/live.js" not in page.text and 'src="/travel.js"' in page.text
        links = re.findall(r'<a (?:id="(\w+)" )?href="([^"]*)"', page.text)
        assert links
        for ident, href in links:
            if ident == "now":
                assert "at=" not in href and href.split("?")[0] == path
            else:
                assert href.endswith(f"at={log.gone}"), (path, href)
        for form in re.findall(r"<form [^>]*method=\"get\".*?</form>", page.text):
            assert 'name="at"' in form, form
        slider = f'type="range" id="travel-seq" name="at" min="1" max="{last}" value="{log.gone}"'
        assert slider in page.text
        assert 'id="travel-at" name="at"' in page.text
    live = await viewer.get("/")
    assert 'src="/live.js"' in live.text and 'id="banner"' not in live.text
    assert f'max="{last}" value="{last}"' in live.text
    script = await viewer.get("/travel.js")
    assert script.status_code == 200 and "travel-seq" in script.text
    assert script.headers["content-type"].startswith("text/javascript")


async def test_a_bad_moment_is_400_naming_it(log: Log, viewer: httpx.AsyncClient) -> None:
    beyond = str(await log_end(log.server.url) + 1000)
    for value in ("yesterday", "0", "2026-13-01", HOSTILE[0], "9" * 30, beyond):
        cli = skyctl("get", "svc", "--at", value, *as_user("viewer"), url=log.server.url)
        assert cli.code != 0
        for path in ("/", "/services/table", "/services/shop/web", "/services/shop/web/history"):
            page = await viewer.get(path, params={"at": value})
            assert page.status_code == 400, (path, value, page.text)
            assert html.escape(cli.err.strip().removeprefix("error: ")) in page.text
            assert "<script>alert" not in page.text


async def test_hostile_values_are_escaped_in_the_past(url: str, ns: str) -> None:
    hostile_actors(url, ns)
    seq = await stream_last_seq(url)
    assert skyctl("delete", "svc", "evil", "-n", ns, url=url).code == 0
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        pages = [
            await http.get(f"/services/{ns}/evil", params={"at": seq}),
            await http.get(f"/services/{ns}/evil/history", params={"at": seq}),
            await http.get("/", params={"at": seq, "namespace": ns}),
        ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert "<script>alert" not in page.text and "<img" not in page.text
    assert f'href="/services/{ns}/evil?at={seq}"' in pages[2].text
    for page in pages[:2]:
        assert page.status_code == 200, page.text
        for value in HOSTILE:
            assert value not in page.text
            assert html.escape(value) in page.text


async def test_who_served_then_comes_from_the_membership_history(url: str, ns: str) -> None:
    recorder = start("record", url=url)
    await Lines(recorder).wait_for(lambda line: line.startswith("recording: caught up"), timeout=60)
    task = Task(namespace=ns, name="web-1", labels={"app": "web"}, address="10.7.3.9")
    async with await Registry.connect(url) as registry:
        await registry.create(Service(namespace=ns, name="web", selector={"app": "web"}))
        async with registry.announce(task, ttl=30):

            async def recorded() -> bool:
                served = await registry.served_at(ns, "web", _now())
                return [(a.task, a.ready) for a in served.endpoints.addresses] == [("web-1", True)]

            await until("the join recorded", recorded)
            moment = datetime.now(UTC).isoformat(timespec="microseconds")
        await registry.delete(ns, "web")
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        page = await http.get(f"/services/{ns}/web", params={"at": moment})
        table = await http.get("/services/table", params={"at": moment, "namespace": ns})
        now = await http.get(f"/services/{ns}/web")
    assert now.status_code == 404
    assert page.status_code == 200, page.text
    assert "<td>10.7.3.9</td>" in page.text and "<td>web-1</td>" in page.text
    assert "no membership history" not in page.text
    assert "<th>ENDPOINTS</th>" in table.text and "<td>1/1</td>" in table.text
    cli = skyctl("get", "endpoints", "web", "-n", ns, "--at", moment, "-o", "wide", url=url)
    assert cli.code == 0, cli.err
    assert "10.7.3.9" in cli.out and "web-1" in cli.out


def _now() -> AtTime:
    return AtTime(datetime.now(UTC))


async def test_a_person_who_may_not_read_membership_sees_the_past_without_it(log: Log) -> None:
    """The controller may read services but not the membership history: the past table
    and definition as ``get svc --at`` shows them, and ``get endpoints --at``'s refusal."""
    url = log.server.url
    table_cli = skyctl("get", "svc", "-A", "--at", str(log.gone), *as_user("controller"), url=url)
    assert table_cli.code == 0, table_cli.err
    cli = skyctl(
        "get", "endpoints", "gone", "-n", "shop", "--at", str(log.gone), *as_user("controller"),
        url=url,
    )  # fmt: skip
    assert cli.code != 0 and "permission denied" in cli.err
    refused = html.escape(cli.err.strip().removeprefix("error: "))
    async with browsing(make_app(Connection(server=url))) as client:
        await sign_in(client, "controller")
        page = await client.get("/", params={"at": log.gone})
        service = await client.get("/services/shop/gone", params={"at": log.gone})
    assert page.status_code == 200, page.text
    assert row("gone", log.gone) in page.text and "<th>ENDPOINTS</th>" not in page.text
    assert refused in page.text
    assert service.status_code == 200, service.text
    assert "app=gone" in service.text and refused in service.text
    assert "<th>TASK</th>" not in service.text
