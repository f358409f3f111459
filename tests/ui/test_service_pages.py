"""The web UI's service pages over HTTP, against a real nats-server with users: a
service's definition and endpoints (``describe svc``, ``get endpoints -o wide``), its
history with a diff between two revisions (``history svc``), refusals, and escaping."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from cli.connection import Connection
from cli.webapp import make_app
from events.task import Task
from registry.client import Registry
from registry.jetstream.credentials import Credentials
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.servers import PASSWORDS
from tests.ui.support import (
    HOSTILE,
    as_user,
    browsing,
    hostile_actors,
    shop_server,
    sign_in,
    signed_in,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """``web`` in ``shop``, created then relabelled and reselected (two revisions)."""
    with shop_server(tmp_path_factory.mktemp("ui-service")) as running:
        yield running


@pytest.fixture
async def viewer(server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(server.url, "viewer") as client:
        yield client


async def test_a_service_page_shows_its_definition_and_live_endpoints(
    server: NatsServer, viewer: httpx.AsyncClient
) -> None:
    table = await viewer.get("/services/table")
    assert '<a href="/services/shop/web">web</a>' in table.text
    admin = Credentials(user="admin", password=PASSWORDS["admin"])
    task = Task(namespace="shop", name="web-1", labels={"app": "web2"}, address="10.9.0.7")
    async with (
        await Registry.connect(server.url, credentials=admin) as registry,
        registry.announce(task, ttl=60),
    ):
        page = await viewer.get("/services/shop/web")
    assert page.status_code == 200, page.text
    described = skyctl("describe", "svc", "web", "-n", "shop", *as_user("viewer"), url=server.url)
    for line in described.out.splitlines()[:12]:  # the definition, before ages move on
        if "ago)" not in line:
            assert html.escape(line) in page.text, line
    assert "Selector:" in page.text and "app=web2" in page.text and "tier=back" in page.text
    for header in ("CLUSTER", "ADDRESS", "PORTS", "READY", "TASK"):
        assert f"<th>{header}</th>" in page.text
    assert "<td>10.9.0.7</td>" in page.text and "<td>web-1</td>" in page.text
    assert "<td>true</td>" in page.text
    assert 'href="/services/shop/web/history"' in page.text


async def test_history_shows_each_event_and_a_diff_between_two(
    server: NatsServer, viewer: httpx.AsyncClient
) -> None:
    cli = skyctl("history", "svc", "web", "-n", "shop", *as_user("viewer"), url=server.url)
    seqs = [line.split()[0] for line in cli.out.splitlines()[1:]]
    assert len(seqs) == 3
    page = await viewer.get("/services/shop/web/history")
    assert page.status_code == 200, page.text
    for header in ("SEQ", "STORED", "ACTOR", "PROOF", "EVENT", "CHANGES"):
        assert f"<th>{header}</th>" in page.text
    for seq in seqs:
        assert f"<tr><td>{seq}</td>" in page.text
    assert page.text.count("<td>admin</td>") == 3
    assert "ServiceCreated" in page.text and page.text.count("ServiceUpdated") == 2
    assert html.escape("selector: app=web -> app=web2") in page.text  # the CHANGES column
    diff = await viewer.get("/services/shop/web/history", params={"from": seqs[0], "to": seqs[2]})
    assert diff.status_code == 200, diff.text
    assert f"Changes from seq {seqs[0]} to seq {seqs[2]}" in diff.text
    assert "<tr><td>selector</td><td>app=web</td><td>app=web2</td></tr>" in diff.text
    assert "<tr><td>labels</td><td>tier=front</td><td>tier=back</td></tr>" in diff.text
    same = await viewer.get("/services/shop/web/history", params={"from": seqs[1], "to": seqs[1]})
    assert "No field differs." in same.text
    for query in ({"from": seqs[0]}, {"from": "x", "to": "1"}, {"from": "1", "to": "999999"}):
        bad = await viewer.get("/services/shop/web/history", params=query)
        assert bad.status_code == 400, (query, bad.text)


async def test_a_missing_service_is_404_with_the_cli_line(
    server: NatsServer, viewer: httpx.AsyncClient
) -> None:
    cli = skyctl("describe", "svc", "nope", "-n", "shop", *as_user("viewer"), url=server.url)
    assert cli.code != 0
    said = cli.err.strip()
    for path in ("/services/shop/nope", "/services/shop/nope/history"):
        page = await viewer.get(path)
        assert page.status_code == 404, page.text
        assert html.escape(said) in page.text


async def test_odd_paths_are_refused_before_the_server_is_asked(
    server: NatsServer, viewer: httpx.AsyncClient
) -> None:
    for path in (
        "/services/shop/..",
        "/services/%2E%2E/web",
        "/services/shop/web.evil",
        "/services/shop/%3Cscript%3E",
        "/services/shop/a%2Fb",
        "/services/shop/*",
        "/services/shop/>",
        "/services/shop/web/%2E%2E/%2E%2E/etc/history",
        "/services/%2E%2E/%2E%2E/history",
        "/services/skyflow.svc.>/web/history",
    ):
        page = await viewer.get(path)
        # 400: the CLI's own check of a name refused it; 404: no route matched at all.
        # Neither asked the server anything (a read that reached it would say "not found
        # in namespace" or show the service).
        assert page.status_code in (400, 404), (path, page.status_code)
        assert "not found in namespace" not in page.text
        if page.status_code == 400:
            assert "error: invalid " in page.text, page.text
        assert "<script>" not in page.text
        assert "Definition" not in page.text and "<h2>Events</h2>" not in page.text


async def test_what_the_server_refuses_is_403_with_the_cli_line(server: NatsServer) -> None:
    """The controller may read services but not the tasks that make endpoints."""
    cli = skyctl("get", "endpoints", "web", "-n", "shop", *as_user("controller"), url=server.url)
    assert cli.code != 0
    async with browsing(make_app(Connection(server=server.url))) as client:
        await sign_in(client, "controller")
        page = await client.get("/services/shop/web")
    assert page.status_code == 403
    assert html.escape(cli.err.strip().removeprefix("error: ")) in page.text
    assert "Definition" not in page.text


async def test_hostile_values_are_escaped_on_both_pages(url: str, ns: str) -> None:
    hostile_actors(url, ns)
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        service = await http.get(f"/services/{ns}/evil")
        history = await http.get(f"/services/{ns}/evil/history")
    for page in (service, history):
        assert page.status_code == 200, page.text
        for value in HOSTILE:
            assert value not in page.text
            assert html.escape(value) in page.text
