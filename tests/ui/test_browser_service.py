"""A service's page in a real browser (Debian's Chromium, headless, by playwright): a
task process announced by ``skyctl announce`` shows on the open page, then its readiness
set by ``skyctl task not-ready`` with a hostile reason (shown as text, no script runs even
with the CSP bypassed), and killed with SIGKILL it leaves the page's endpoints within its
TTL + 1 s, all without a reload. Signing in by pasting a creds file into the form."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cli.connection import Connection
from cli.webapp import make_app
from tests.creds import operator_server
from tests.helpers import Lines, skyctl, start
from tests.ui.browser import launched, opened, screenshot, serving, until
from tests.ui.support import HOSTILE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TTL = 2  # seconds: the task's heartbeat TTL


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as running:
        yield running


def endpoints_text(page: Page) -> str:
    return page.locator("#endpoints").inner_text()


def test_a_sigkilled_task_leaves_the_open_page_within_its_ttl_plus_1s(
    browser: Browser, url: str, ns: str
) -> None:
    made = skyctl("create", "svc", "web", "-n", ns, "-s", "app=web", "-p", "80:8080", url=url)
    assert made.code == 0, made.err
    with (
        serving(make_app(Connection(server=url), anonymous=True)) as base,
        opened(browser) as (
            page,
            _,
        ),
    ):
        page.goto(f"{base}/services/{ns}/web")
        # The page's every-5-s refresh stopped: only the server's event can take the task
        # off in time. A marker a reload would lose.
        page.evaluate("for (let id = 1; id < 1000; id++) clearInterval(id)")
        page.evaluate("window.notReloaded = true")
        flags = ("-n", ns, "--labels", "app=web", "--ttl", f"{TTL}s")
        task = start("announce", "task", "victim", "--address", "10.9.2.1", *flags, url=url)
        lines = Lines(task)
        until("announced", lambda: any(line.startswith("task/victim") for _, line in lines.lines))
        until("the task on the open page", lambda: "victim" in endpoints_text(page))
        reason = ("--reason", HOSTILE[1])
        turned = skyctl("task", "not-ready", "victim", "-n", ns, *reason, url=url)
        assert turned.code == 0, turned.err
        until("its hostile reason, as text", lambda: HOSTILE[1] in endpoints_text(page))
        assert "\tfalse\t" in endpoints_text(page)
        screenshot(page, "service-live")
        task.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        until("the killed task off the page", lambda: "victim" not in endpoints_text(page))
        gone = time.monotonic() - killed
        assert gone <= TTL + 1, f"the killed task left the page after {gone:.2f} s"
        assert page.evaluate("window.notReloaded") is True  # swapped in, not reloaded
        assert "<none>" in endpoints_text(page)


def test_a_creds_file_pasted_into_the_form_signs_in(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As a person would: the creds file's text pasted into the sign-in form's text area
    (the browser sends it with CR LF line ends), then the services page as that user."""
    directory = tmp_path_factory.mktemp("browser-creds")
    with (
        operator_server(directory, "carol") as (server, creds),
        serving(make_app(Connection(server=server.url))) as base,
        opened(browser) as (page, _),
    ):
        page.goto(f"{base}/login")
        page.fill('textarea[name="creds"]', creds.read_text())
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/")
        assert "signed in as carol" in page.inner_text("header")
        page.wait_for_selector('#services a[href="/services/shop/web"]')
        page.goto(f"{base}/login")
        page.fill('textarea[name="creds"]', "not a creds file")
        page.click('button[type="submit"]')
        error = page.inner_text("p.error")
        assert error.startswith("Not signed in: invalid creds file"), error
