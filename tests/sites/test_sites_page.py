"""The web UI's sites page (``/sites``) at a hub, in a real browser (Debian's Chromium,
headless, by playwright): ``skyctl get sites``' table, kept live, so a site whose link is
cut turns stale on the open page within its lease and a little, without a reload, and
live again after the heal. At a server with no sites it says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cli.connection import Connection
from cli.siteviews import SITE_COLUMNS
from cli.webapp import make_app
from tests.sitesetup import Running, sites_ready
from tests.ui.browser import launched, opened, screenshot, serving, until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LEASE_S = 2.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as running:
        yield running


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    lease = ("--lease", f"{LEASE_S:g}s")
    with sites_ready(tmp_path_factory.mktemp("sites-page"), *lease, west=False) as running:
        yield running


def east_row(page: Page) -> list[str]:
    for line in page.locator("#sites").inner_text().splitlines():
        cells = line.split()
        if cells and cells[0] == "east":
            return cells
    return []


def test_the_sites_page_follows_a_cut_and_a_heal(browser: Browser, up: Running) -> None:
    with (
        serving(make_app(Connection(server=up.hub), anonymous=True)) as base,
        opened(browser) as (page, dialogs),
    ):
        page.goto(f"{base}/sites")
        header = page.locator("#sites thead").inner_text().split()
        assert header == list(SITE_COLUMNS)  # get sites' own
        until("east live on the page", lambda: east_row(page)[6:7] == ["live"])
        assert east_row(page)[:3] == ["east", "east", "up"]
        page.evaluate("window.notReloaded = true")
        up.link.cut()
        try:
            cut_at = time.monotonic()
            until("east stale on the open page", lambda: east_row(page)[6:7] == ["stale"])
            # The lease, the page's 2 s refresh, and a heartbeat interval of slack.
            assert time.monotonic() - cut_at <= LEASE_S + 2.0 + 2.0, east_row(page)
            assert east_row(page)[2] == "down"
            screenshot(page, "sites")
        finally:
            up.link.heal()
        until("east live again", lambda: east_row(page)[6:7] == ["live"], timeout=90)
        assert page.evaluate("window.notReloaded") is True  # swapped in, not reloaded
        dialogs.assert_none()


def test_a_server_with_no_sites_says_so(browser: Browser, up: Running) -> None:
    with (
        serving(make_app(Connection(server=up.east), anonymous=True)) as base,
        opened(browser) as (page, _),
    ):
        page.goto(f"{base}/sites")
        assert "No sites: this server sources none" in page.locator("#sites").inner_text()
        page.goto(base)
        page.click("text=Sites")  # the services page links to it
        assert page.url == f"{base}/sites"
