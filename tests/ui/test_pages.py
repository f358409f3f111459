"""The web UI (``skyctl ui``) over HTTP, its ASGI app driven by httpx, against a real
nats-server with users (``nats-server-auth.conf``): sign-in, the same permissions as the
CLI, filters, cookies, and escaping of what the log holds."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from cli.connection import Connection
from cli.webapp import COOKIE, make_app
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server
from tests.ui.support import HOSTILE, as_user, browsing

# The NAME cell links to the service's page.
WEB = '<td><a href="/services/shop/web">web</a></td>'
DB = '<td><a href="/services/shop/db">db</a></td>'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("ui")) as running:
        init = skyctl("init", *as_user("admin"), *INIT_TEAMS, url=running.url)
        assert init.code == 0, init.err
        for name, kind in (("web", "ClusterIP"), ("db", "NodePort")):
            made = skyctl(
                "create", "svc", name, "-n", "shop", "-t", kind, "-s", f"app={name}",
                "-p", "80:8080", "--labels", f"tier={name}", *as_user("admin"),
                url=running.url,
            )  # fmt: skip
            assert made.code == 0, made.err
        yield running


@pytest.fixture
def app(server: NatsServer) -> Starlette:
    return make_app(Connection(server=server.url))


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with browsing(app) as http:
        yield http


async def sign_in(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/login", data={"user": user, "password": password})


async def test_nothing_is_readable_signed_out(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login"
    for path in ("/", "/services/table", "/events"):
        refused = await client.get(path)
        assert refused.status_code == 401
        assert "web" not in refused.text
    client.cookies.set(COOKIE, "made-up")
    forged = await client.get("/")
    assert forged.status_code == 401


async def test_a_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    refused = await sign_in(client, "viewer", "not-the-password")
    assert refused.status_code == 401
    assert COOKIE not in refused.cookies
    assert refused.text.count('class="error"') == 1
    assert "the server refused these credentials" in refused.text
    assert "--user" not in refused.text  # the CLI's hint names its flags: not a browser's
    assert (await client.get("/")).status_code == 401
    empty = await client.post("/login", data={"user": "", "password": ""})
    assert empty.status_code == 401 and COOKIE not in empty.cookies


async def test_a_viewer_sees_the_wide_table_with_endpoints(client: httpx.AsyncClient) -> None:
    signed = await sign_in(client, "viewer", PASSWORDS["viewer"])
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = await client.get("/")
    assert page.status_code == 200
    # No inline script or style: the policy allows the UI's own files only.
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "<script>" not in page.text and '<script src="/live.js" defer>' in page.text
    script = await client.get("/live.js")
    assert (
        script.status_code == 200
        and 'new EventSource("/events" + (marked ? "?" + mark : ""))' in script.text
    )
    for header in ("NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "AGE"):
        assert f"<th>{html.escape(header)}</th>" in page.text
    assert WEB in page.text and DB in page.text
    assert "<td>0/0</td>" in page.text  # ready/total: no task announced
    # Filters: -l syntax, type, namespace, no ready endpoint.
    web = await client.get("/services/table", params={"selector": "tier in (web)"})
    assert WEB in web.text and DB not in web.text
    ports = await client.get("/services/table", params={"type": "NodePort"})
    assert DB in ports.text and WEB not in ports.text
    other = await client.get("/services/table", params={"namespace": "elsewhere"})
    assert "No services found." in other.text
    unready = await client.get("/services/table", params={"unready": "1"})
    assert WEB in unready.text
    recent = await client.get("/services/table", params={"changed": "1h"})
    assert WEB in recent.text and DB in recent.text
    later = await client.get("/services/table", params={"changed": "999999"})  # a sequence
    assert "No services found." in later.text
    # Signing out ends the session.
    session = signed.cookies[COOKIE]
    out = await client.post("/logout")
    assert out.status_code == 303
    client.cookies.set(COOKIE, session)  # the old cookie, kept by someone: worth nothing
    assert (await client.get("/")).status_code == 401


async def test_bad_filters_are_a_400_naming_the_value(client: httpx.AsyncClient) -> None:
    await sign_in(client, "viewer", PASSWORDS["viewer"])
    bad = {"selector": "tier in (web", "type": "Bogus", "namespace": "A_B", "changed": "soon"}
    for name, value in bad.items():
        page = await client.get("/", params={name: value})
        assert page.status_code == 400, (name, page.text)
        assert html.escape(value) in page.text
    for value in HOSTILE:
        page = await client.get("/", params={"selector": value, "namespace": value})
        assert page.status_code == 400
        assert value not in page.text and html.escape(value) in page.text


async def test_what_the_server_denies_the_ui_denies_as_the_cli_does(
    client: httpx.AsyncClient, server: NatsServer
) -> None:
    """The controller reads services but not tasks: the table with endpoints is refused
    with the CLI's own error, and shows no service."""
    cli = skyctl("get", "svc", "-A", "-o", "wide", *as_user("controller"), url=server.url)
    assert cli.code != 0
    said = cli.err.strip().removeprefix("error: ")
    assert (await sign_in(client, "controller", PASSWORDS["controller"])).status_code == 303
    page = await client.get("/")
    assert page.status_code == 403
    assert html.escape(said) in page.text
    assert WEB not in page.text


def test_ui_refuses_a_remote_listen_without_allow_remote(server: NatsServer) -> None:
    result = skyctl("ui", "--listen", "0.0.0.0:0", url=server.url)
    assert result.code != 0
    assert "--allow-remote" in result.err


async def test_what_the_log_holds_is_escaped(url: str, ns: str) -> None:
    """A hostile actor (the local user name of whoever wrote, on a server without users)
    shows escaped in CREATED-BY: the raw markup is nowhere in the page."""
    for i, value in enumerate(HOSTILE):
        env = {"LOGNAME": value, "USER": value}
        made = skyctl("create", "svc", f"evil-{i}", "-n", ns, "-s", "app=x", url=url, env=env)
        assert made.code == 0, made.err
    async with browsing(make_app(Connection(server=url), anonymous=True)) as http:
        page = await http.get("/", params={"namespace": ns})
    assert page.status_code == 200, page.text
    for value in HOSTILE:
        assert value not in page.text
        assert html.escape(value) in page.text
    assert "evil-0</a></td>" in page.text and "evil-1</a></td>" in page.text


async def test_a_session_ends_after_its_lifetime(app: Starlette, client: httpx.AsyncClient) -> None:
    sessions = app.state.sessions
    now = [1000.0]
    sessions.clock = lambda: now[0]
    assert (await sign_in(client, "viewer", PASSWORDS["viewer"])).status_code == 303
    assert (await client.get("/services/table")).status_code == 200
    now[0] += sessions.lifetime
    assert (await client.get("/services/table")).status_code == 401
    assert not sessions.by_id and not sessions.people  # its connection closed with it


def test_an_address_in_use_or_remote_is_one_line_naming_it() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        busy = skyctl("ui", "--listen", listen, url="nats://127.0.0.1:1")
    assert busy.code == 2 and busy.out == "", busy.err
    assert busy.err.splitlines() == [
        f'error: invalid listen "{listen}": cannot listen there: Address already in use'
    ]
    remote = skyctl("ui", "--listen", "192.0.2.1:8080", url="nats://127.0.0.1:1")
    assert remote.code == 2 and "--allow-remote" in remote.err and len(remote.err.splitlines()) == 1
