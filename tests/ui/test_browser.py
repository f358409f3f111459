"""The web UI in a real browser: Debian's Chromium, headless, driven by playwright, against
``skyctl ui``'s app served by uvicorn on a loopback socket and a real nats-server with
users. What the CLI changes shows in an open page within a second, without a reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from cli.connection import Connection
from cli.webapp import make_app
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.servers import INIT_TEAMS, auth_server
from tests.ui.browser import launched, opened, screenshot, serving, sign_in
from tests.ui.support import as_user

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LIVE_WITHIN = 1.0  # seconds from the CLI's return to the open page showing the change


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("ui-browser")) as running:
        init = skyctl("init", *as_user("admin"), *INIT_TEAMS, url=running.url)
        assert init.code == 0, init.err
        yield running


@pytest.fixture(scope="module")
def base(server: NatsServer) -> Iterator[str]:
    """The UI, served for the whole module (its sessions closed with it)."""
    app: Any = make_app(Connection(server=server.url))
    with serving(app) as running:
        yield running


def admin(server: NatsServer, *args: str) -> None:
    done = skyctl(*args, *as_user("admin"), url=server.url)
    assert done.code == 0, done.err


def shown_within(page: Page, selector: str, *, gone: bool = False) -> float:
    """Seconds until ``selector`` is in the page (or, ``gone``, no longer is), waiting up
    to 30 s so a slow machine reports the time it took rather than a timeout."""
    started = time.monotonic()
    page.wait_for_selector(selector, state="detached" if gone else "attached", timeout=30_000)
    return time.monotonic() - started


def test_a_service_the_cli_creates_shows_in_the_open_page(
    browser: Browser, server: NatsServer, base: str
) -> None:
    with opened(browser) as (page, _):
        sign_in(page, base, "viewer")
        page.wait_for_selector("#services")
        page.evaluate("window.notReloaded = true")
        admin(server, "create", "svc", "first", "-n", "shop", "-s", "app=first")
        took = shown_within(page, 'a[href="/services/shop/first"]')
        assert took <= LIVE_WITHIN, f"shown {took:.2f} s after skyctl create returned"
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "services")
