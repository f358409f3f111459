"""The web UI served by uvicorn on a real loopback socket: live changes by server-sent
events, one reader per person, and a reconnect with ``Last-Event-ID`` getting exactly
what it missed."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.connection import Connection
from cli.webapp import make_app
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl, start
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server
from tests.ui.browser import serving

ADMIN = ("--user", "admin", "--password", PASSWORDS["admin"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("ui-live")) as running:
        init = skyctl("init", *ADMIN, *INIT_TEAMS, url=running.url)
        assert init.code == 0, init.err
        yield running


@pytest.fixture
def app(server: NatsServer) -> Any:
    return make_app(Connection(server=server.url))


@pytest.fixture
def browser(app: Any) -> Iterator[httpx.Client]:
    """A signed-in viewer's browser."""
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        signed = client.post("/login", data={"user": "viewer", "password": PASSWORDS["viewer"]})
        assert signed.status_code == 303, signed.text
        yield client


def events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's events (``id`` and the JSON ``data``), once it has said it is open."""
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith("retry:"):
            yield {"open": True}
        elif line.startswith("id: "):
            current["id"] = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            current["data"] = json.loads(line.removeprefix("data: "))
        elif not line and "id" in current:
            yield current
            current = {}


def change(server: NatsServer, *args: str) -> None:
    result = skyctl(*args, "-n", "shop", *ADMIN, url=server.url)
    assert result.code == 0, result.err


def test_a_reconnect_gets_exactly_the_changes_it_missed(
    browser: httpx.Client, server: NatsServer
) -> None:
    with browser.stream("GET", "/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        feed = events(stream)
        assert next(feed) == {"open": True}
        change(server, "create", "svc", "live-a", "-s", "app=a")
        first = next(feed)
    assert first["data"]["type"] == "ServiceCreated"
    assert first["data"]["subject"].endswith(".shop.live-a")
    # Disconnected: three changes happen.
    change(server, "create", "svc", "live-b", "-s", "app=b")
    change(server, "create", "svc", "live-c", "-s", "app=c")
    change(server, "delete", "svc", "live-a")
    with browser.stream("GET", "/events", headers={"Last-Event-ID": str(first["id"])}) as again:
        feed = events(again)
        assert next(feed) == {"open": True}
        missed = [next(feed) for _ in range(3)]
        # Then live again, with nothing doubled: the next event is the next change.
        change(server, "delete", "svc", "live-b")
        after = next(feed)
    shown = [(m["data"]["type"], m["data"]["subject"].rsplit(".", 1)[1]) for m in missed]
    assert shown == [
        ("ServiceCreated", "live-b"),
        ("ServiceCreated", "live-c"),
        ("ServiceDeleted", "live-a"),
    ]
    ids = [first["id"], *(m["id"] for m in missed), after["id"]]
    assert ids == sorted(set(ids))
    assert (after["data"]["type"], after["data"]["subject"]) == (
        "ServiceDeleted",
        missed[0]["data"]["subject"],
    )


def test_one_reader_serves_every_browser_of_a_person(
    app: Any, browser: httpx.Client, server: NatsServer
) -> None:
    other = httpx.Client(base_url=str(browser.base_url), timeout=30)
    with other:
        signed = other.post("/login", data={"user": "viewer", "password": PASSWORDS["viewer"]})
        assert signed.status_code == 303
        with browser.stream("GET", "/events") as one, other.stream("GET", "/events") as two:
            feeds = events(one), events(two)
            assert [next(feed) for feed in feeds] == [{"open": True}] * 2
            people = list(app.state.sessions.people.values())
            assert len(people) == 1 and len(people[0].sessions) == 2
            assert len(people[0].hub.queues) == 2
            change(server, "create", "svc", "shared", "-s", "app=s")
            seen = [next(feed) for feed in feeds]
    assert seen[0] == seen[1] and seen[0]["data"]["type"] == "ServiceCreated"
    page = browser.get("/")
    assert page.status_code == 200 and ">shared</a></td>" in page.text
    assert '<script src="/live.js" defer></script>' in page.text


async def test_a_task_coming_and_going_is_an_endpoints_event(app: Any, server: NatsServer) -> None:
    """A task joining a service changes its endpoints, not the service: an ``endpoints``
    event (the liveness stream's, so without a log sequence), and the table shows 1/1."""
    from events.task import Task
    from registry.client import Registry
    from registry.jetstream.credentials import Credentials

    change(server, "create", "svc", "served", "-s", "app=served", "-p", "80:8080")
    admin = Credentials(user="admin", password=PASSWORDS["admin"])
    task = Task(namespace="shop", name="served-1", labels={"app": "served"}, address="10.9.0.1")
    with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            viewer = {"user": "viewer", "password": PASSWORDS["viewer"]}
            assert (await client.post("/login", data=viewer)).status_code == 303
            async with (
                client.stream("GET", "/events") as stream,
                await Registry.connect(server.url, credentials=admin) as registry,
            ):
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("retry:")
                async with asyncio.timeout(30), registry.announce(task, ttl=60):
                    async for line in lines:
                        if line == "event: endpoints":
                            data = json.loads((await anext(lines)).removeprefix("data: "))
                            if data["name"] == "served":
                                break
                    assert data == {"namespace": "shop", "name": "served", "endpoints": "1/1"}
                    table = await client.get("/services/table", params={"namespace": "shop"})
    assert (
        '<a href="/services/shop/served">served</a>' in table.text and "<td>1/1</td>" in table.text
    )


def test_skyctl_ui_serves_until_ctrl_c(url: str, ns: str) -> None:
    """The command itself, in a process of its own: it says where it serves, serves the
    page (``--anonymous``: no sign-in), and Ctrl-C ends it successfully."""
    made = skyctl("create", "svc", "front", "-n", ns, "-s", "app=front", url=url)
    assert made.code == 0, made.err
    proc = start("ui", "--anonymous", "--listen", "127.0.0.1:0", url=url)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("Serving the SkyFlow UI on http://127.0.0.1:"), line
    page = httpx.get(line.split(" on ", 1)[1].strip(), params={"namespace": ns}, timeout=30)
    assert page.status_code == 200 and ">front</a></td>" in page.text
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""


def _mark(browser: httpx.Client) -> tuple[int, int]:
    """The services page's mark (data-since, data-moves), once the person's follower of
    endpoints follows (a moment after their first page starts it)."""
    deadline = time.monotonic() + 30
    while True:
        page = browser.get("/", params={"namespace": "shop"})
        assert page.status_code == 200
        found = re.search(
            r'<div id="services" data-live="[^"]*" data-since="(\d+)" data-moves="(\d+)">',
            page.text,
        )
        if found is not None:
            return int(found.group(1)), int(found.group(2))
        assert time.monotonic() < deadline, page.text[:500]
        time.sleep(0.05)


def _opening(stream: httpx.Response, count: int) -> list[str]:
    """The first ``count`` events of a stream, each as ``kind data`` (kind: message,
    resync, endpoints...), after it says it is open."""
    lines = stream.iter_lines()
    assert next(lines).startswith("retry:")
    shown: list[str] = []
    kind, data = "message", ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and data:
            shown.append(f"{kind} {data}")
            kind, data = "message", ""
            if len(shown) == count:
                return shown
    raise AssertionError(f"the stream ended after {shown}")


def test_a_page_stream_opens_at_the_page_mark(browser: httpx.Client, server: NatsServer) -> None:
    """A change made between serving the page and its stream opening comes first on the
    stream (the page need not read its table again); a mark whose endpoint moves cannot
    be told gets ``resync``."""
    since, moves = _mark(browser)
    change(server, "create", "svc", "marked", "-s", "app=marked")
    query = {"since": str(since), "moves": str(moves)}
    with browser.stream("GET", "/events", params=query) as stream:
        (first,) = _opening(stream, 1)
    kind, data = first.split(" ", 1)
    assert kind == "message" and json.loads(data)["type"] == "ServiceCreated"
    assert (json.loads(data)["namespace"], json.loads(data)["name"]) == ("shop", "marked")
    for unknown in ({"since": str(since)}, {"since": str(since), "moves": str(moves + 10**6)}):
        with browser.stream("GET", "/events", params=unknown) as stream:
            assert _opening(stream, 1)[0] == "resync {}"
    bad = browser.get("/events", params={"since": "1; drop"})
    assert bad.status_code == 400 and "since &#x27;1; drop&#x27;" in bad.text


async def test_endpoint_moves_after_the_mark_come_first(app: Any, server: NatsServer) -> None:
    """A task joining a service after its page was served, before the page's stream
    opens: the stream starts with that ``endpoints`` event (kept by the person's hub)."""
    from events.task import Task
    from registry.client import Registry
    from registry.jetstream.credentials import Credentials

    change(server, "create", "svc", "moved", "-s", "app=moved", "-p", "80:8080")
    admin = Credentials(user="admin", password=PASSWORDS["admin"])
    task = Task(namespace="shop", name="moved-1", labels={"app": "moved"}, address="10.9.0.2")
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as browser:
        viewer = {"user": "viewer", "password": PASSWORDS["viewer"]}
        signed = await asyncio.to_thread(browser.post, "/login", data=viewer)
        assert signed.status_code == 303
        since, moves = await asyncio.to_thread(_mark, browser)
        (hub,) = [person.hub for person in app.state.sessions.people.values()]

        def opening() -> list[str]:
            query = {"since": str(since), "moves": str(moves)}
            with browser.stream("GET", "/events", params=query) as stream:
                return _opening(stream, 1)

        async with (
            await Registry.connect(server.url, credentials=admin) as registry,
            registry.announce(task, ttl=60),
        ):
            deadline = time.monotonic() + 30
            while not any(m.name == "moved" for _, m in hub.recent):
                assert time.monotonic() < deadline, "the hub saw no move"
                await asyncio.sleep(0.02)
            (first,) = await asyncio.to_thread(opening)
    expected = {"namespace": "shop", "name": "moved", "endpoints": "1/1"}
    assert first == f"endpoints {json.dumps(expected)}"


def test_the_table_of_named_services(browser: httpx.Client, server: NatsServer) -> None:
    """``?service=NAMESPACE/NAME`` (what the live page fetches on a change): those rows
    alone, each naming its service, the filters kept; one that is not live, none."""
    change(server, "create", "svc", "named", "-s", "app=named")
    asked = {"service": ["shop/named", "shop/not-there"]}
    table = browser.get("/services/table", params=asked)
    assert table.status_code == 200
    assert table.text.count("<tr data-key=") == 1
    assert '<tr data-key="shop/named"><td>shop</td>' in table.text
    # PROOF as in the table the rows go into: "-" where nothing is signed, "unproven"
    # where the page's table shows signing in use.
    assert "<td>-</td></tr>" in table.text and "unproven" not in table.text
    signed = browser.get("/services/table", params={**asked, "signing": "1"})
    assert "<td>unproven</td></tr>" in signed.text
    assert '<table class="head" data-signing="1">' in signed.text
    elsewhere = browser.get("/services/table", params={**asked, "namespace": "other"})
    assert elsewhere.status_code == 200 and "data-key" not in elsewhere.text
    for bad, named in (("shop", "service &quot;shop&quot;"), ("shop/..", "&quot;..&quot;")):
        refused = browser.get("/services/table", params={"service": bad})
        assert refused.status_code == 400 and named in refused.text, refused.text
