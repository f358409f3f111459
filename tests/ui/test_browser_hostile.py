"""Hostile values in a real browser (Debian's Chromium, headless): services whose actor is
``<script>alert(1)</script>`` or ``"><img src=x onerror=alert(1)>``, shown on the live
services page (swapped in by ``/live.js`` as they are made), on the service's page and
in its history, and the same values typed into the filters. No script runs: no dialog
opens, no element the data spelled exists, and the values show as the text they are.
Each check runs twice: with the pages' Content-Security-Policy, and with the browser
told to ignore it, so that the escaping alone is what holds."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from cli.connection import Connection
from cli.webapp import make_app
from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.ui.browser import Dialogs, launched, opened, serving
from tests.ui.support import HOSTILE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WITH_AND_WITHOUT_CSP = pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server without users: the actor of each change is whoever ``$USER`` says."""
    with NatsServer(tmp_path_factory.mktemp("ui-hostile") / "store") as running:
        init = skyctl("init", url=running.url)
        assert init.code == 0, init.err
        yield running


@pytest.fixture(scope="module")
def base(server: NatsServer) -> Iterator[str]:
    """The UI without sign-in."""
    app: Any = make_app(Connection(server=server.url), anonymous=True)
    with serving(app) as running:
        yield running


def harmless(page: Page, dialogs: Dialogs) -> None:
    """No script but the UI's own, no image, no dialog; each hostile value is text."""
    page.wait_for_load_state("load")  # an <img>'s onerror would have fired by now
    dialogs.assert_none()
    scripts = page.eval_on_selector_all("script", "all => all.map(s => s.getAttribute('src'))")
    assert set(scripts) <= {"/live.js", "/travel.js"}, scripts  # the UI's own
    assert page.locator("img").count() == 0
    assert page.locator("[onerror]").count() == 0


@WITH_AND_WITHOUT_CSP
def test_hostile_actors_run_no_script(
    browser: Browser, server: NatsServer, base: str, bypass_csp: bool
) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    with opened(browser, bypass_csp=bypass_csp) as (page, dialogs):
        page.goto(f"{base}/?namespace={ns}")
        page.wait_for_function("() => source.readyState === EventSource.OPEN")
        steps = (  # made while the page is open: swapped in live
            (HOSTILE[0], ("create", "svc", "evil-0", "-s", "app=x")),
            (HOSTILE[1], ("create", "svc", "evil-1", "-s", "app=x")),
            (HOSTILE[1], ("label", "svc", "evil-0", "x=y")),
        )
        for actor, step in steps:
            env = {"LOGNAME": actor, "USER": actor}
            made = skyctl(*step, "-n", ns, url=server.url, env=env)
            assert made.code == 0, made.err
        rows = [f'tr:has(a[href="/services/{ns}/evil-{i}"])' for i in range(2)]
        page.wait_for_selector(rows[1], state="attached")
        harmless(page, dialogs)
        for row, actor in zip(rows, HOSTILE, strict=True):
            assert actor in page.inner_text(row)  # CREATED-BY, as text
        page.goto(f"{base}/services/{ns}/evil-0")
        harmless(page, dialogs)
        assert all(value in page.inner_text("pre.describe") for value in HOSTILE)
        page.goto(f"{base}/services/{ns}/evil-0/history")
        harmless(page, dialogs)
        actors = page.locator("tbody tr td:nth-child(3)").all_inner_texts()
        assert [actor.rsplit("@", 1)[0] for actor in actors] == list(HOSTILE)  # user@host
        # The same, in the past (time travel: the log's end as a sequence).
        last = page.locator("#travel-seq").get_attribute("max")
        for path in (
            f"/?namespace={ns}",
            f"/services/{ns}/evil-0",
            f"/services/{ns}/evil-0/history",
        ):
            page.goto(f"{base}{path}{'&' if '?' in path else '?'}at={last}")
            harmless(page, dialogs)
            assert page.locator("#banner").count() == 1
            assert all(value in page.inner_text("body") for value in HOSTILE)


@WITH_AND_WITHOUT_CSP
def test_hostile_filters_run_no_script(browser: Browser, base: str, bypass_csp: bool) -> None:
    with opened(browser, bypass_csp=bypass_csp) as (page, dialogs):
        for field in ("namespace", "selector", "type", "changed", "at"):
            for value in HOSTILE:
                page.goto(f"{base}/?{urllib.parse.urlencode({field: value})}")
                harmless(page, dialogs)
                assert value in page.inner_text(".error")
