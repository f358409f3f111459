"""Time travel in a real browser (Debian's Chromium, headless, driven by playwright): the
slider, moved and let go, loads the services page as the registry was at that sequence,
a service deleted since shown as it was, under a banner; a typed sequence does the same;
the banner's link comes back to the live page. The audit page says what ``audit verify``
says.

With ``SKYFLOW_SCREENSHOTS=DIR`` set, the tests save a PNG of each past page there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from cli.connection import Connection
from cli.webapp import make_app
from tests.helpers import skyctl
from tests.servers import INIT_TEAMS, auth_server
from tests.ui.browser import launched, opened, screenshot, serving, sign_in
from tests.ui.support import as_user

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@dataclass(frozen=True)
class Story:
    """The UI served over a server where ``gone`` was created, labelled and deleted."""

    base: str
    url: str  # the NATS server's
    created: int  # the sequence of gone's creation
    labelled: int  # of its label tier=old
    deleted: int  # of its deletion


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as running:
        yield running


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with auth_server(tmp_path_factory.mktemp("ui-browser-travel")) as running:
        steps = (
            ("init", *INIT_TEAMS),
            ("create", "svc", "web", "-n", "shop", "-s", "app=web", "-p", "80:8080"),
            ("create", "svc", "gone", "-n", "shop", "-s", "app=gone", "-p", "81:8081"),
            ("label", "svc", "gone", "-n", "shop", "tier=old"),
            ("delete", "svc", "gone", "-n", "shop"),
        )
        for step in steps:
            done = skyctl(*step, *as_user("admin"), url=running.url)
            assert done.code == 0, (step, done.err)
        history = skyctl(
            "history", "svc", "gone", "-n", "shop", "-o", "json", *as_user("admin"),
            url=running.url,
        )  # fmt: skip
        assert history.code == 0, history.err
        created, labelled, deleted = (item["seq"] for item in json.loads(history.out))
        with serving(make_app(Connection(server=running.url))) as base:
            yield Story(base, running.url, created, labelled, deleted)


def gone_row(at: int) -> str:
    return f'tr:has(a[href="/services/shop/gone?at={at}"])'


def assert_past(page: Page, seq: int) -> None:
    """The page is the registry at ``seq``: the banner says so, and nothing is live."""
    banner = page.locator("#banner")
    assert re.search(rf"As the registry was at \S+Z \(log sequence {seq}\)", banner.inner_text())
    assert page.locator('script[src="/live.js"]').count() == 0
    assert page.evaluate("typeof source") == "undefined"  # live.js's EventSource


def test_the_slider_shows_a_deleted_service_as_it_was(browser: Browser, story: Story) -> None:
    with opened(browser) as (page, _):
        sign_in(page, story.base, "viewer")
        page.wait_for_selector('a[href="/services/shop/web"]')
        assert page.locator('a[href^="/services/shop/gone"]').count() == 0
        assert page.locator("#banner").count() == 0
        last = int(page.locator("#travel-seq").get_attribute("max") or 0)
        assert last >= story.deleted
        # Moved and let go (fill: input, then change): the page at that sequence.
        with page.expect_navigation():
            page.locator("#travel-seq").fill(str(story.labelled))
        assert page.url == f"{story.base}/?at={story.labelled}"
        assert_past(page, story.labelled)
        row = page.locator(gone_row(story.labelled))
        assert row.count() == 1 and "app=gone" in row.inner_text()
        assert page.locator("#travel-seq").input_value() == str(story.labelled)
        screenshot(page, "travel-services")
        # Its page then, reached through the past table's link: as it was, labelled.
        page.click(f'a[href="/services/shop/gone?at={story.labelled}"]')
        page.wait_for_url(re.compile(r"/services/shop/gone\?at="))
        assert_past(page, story.labelled)
        described = page.locator("pre.describe").inner_text()
        assert "tier=old" in described and "app=gone" in described
        screenshot(page, "travel-service")
        # Back to the services page at that moment, then a sequence typed: before gone.
        page.click(f'a[href="/?at={story.labelled}"]')
        page.fill("#travel-at", str(story.created - 1))
        with page.expect_navigation():
            page.press("#travel-at", "Enter")
        assert_past(page, story.created - 1)
        assert page.locator('a[href^="/services/shop/gone"]').count() == 0
        page.wait_for_selector(f'a[href="/services/shop/web?at={story.created - 1}"]')
        # And back to now: live again, gone gone.
        with page.expect_navigation():
            page.click("#now")
        assert page.url == f"{story.base}/"
        page.wait_for_function("() => source.readyState === EventSource.OPEN")
        assert page.locator("#banner").count() == 0
        assert page.locator('a[href^="/services/shop/gone"]').count() == 0


def test_the_audit_page_from_the_services_page(browser: Browser, story: Story) -> None:
    cli = skyctl("audit", "verify", *as_user("viewer"), url=story.url)
    assert cli.code == 0, cli.err
    with opened(browser) as (page, _):
        sign_in(page, story.base, "viewer")
        with page.expect_navigation():
            page.click('a[href="/audit"]')
        assert page.inner_text("#verdict") == cli.out.strip().splitlines()[-1]
        assert page.locator("#first-break").count() == 0
        screenshot(page, "audit")
