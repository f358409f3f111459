"""What the UI's browser tests share (not a test module): the app served by uvicorn on a
real loopback socket, Debian's Chromium driven headless by playwright, signing in through
the sign-in form, and a recorder of every dialog a page opened (an ``alert`` is how a
script slipped into a page would show itself).

Playwright's sync API marks its event loop as running in the test's thread while it is
open, so everything else runs beside it in threads: uvicorn (``serving``) and skyctl
(``tests.helpers.skyctl`` sees the loop and runs the command in a thread of its own).
A browser test module is therefore all sync tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from cli.ui import bind
from tests.servers import PASSWORDS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, FloatRect, Page, ViewportSize

VIEWPORT: ViewportSize = {"width": 1200, "height": 800}
SCREENSHOTS = "SKYFLOW_SCREENSHOTS"  # a folder: the tests save a PNG of each page there


@contextlib.contextmanager
def serving(app: Any, sock: Any = None) -> Iterator[str]:
    """``app`` served by uvicorn in a thread of its own, on a free loopback port (or on
    ``sock``, a bound socket: to serve again on the port of a server that stopped)."""
    sock = bind("127.0.0.1", 0) if sock is None else sock
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Seconds until ``check()`` holds, polled every 20 ms (a sync test: playwright's
    loop runs in this thread)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"never: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def chromium() -> str | None:
    """Debian's Chromium (``scripts/test`` installs it with apt where it can)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def launched() -> Iterator[Browser]:
    """A headless Chromium for a test module (start it in a module-scoped fixture: about
    half a second to launch). Skips, saying why, where playwright or Chromium is missing;
    never downloads a browser (``playwright install`` is not used: Debian's is)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need playwright: pip install -e '.[test]'")
    path = chromium()
    if path is None:
        pytest.skip(
            "browser tests need Chromium on PATH: `apt-get install chromium` "
            "(scripts/test does it when run as root)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Dialogs:
    """Every dialog (``alert``, ``confirm``, ``prompt``) any page of a context opened, each
    dismissed: a script that ran where it should not have shows here."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_none(self) -> None:
        assert self.seen == [], f"a script ran: {self.seen}"


@contextlib.contextmanager
def opened(browser: Browser, *, bypass_csp: bool = False) -> Iterator[tuple[Page, Dialogs]]:
    """A new page in a context of its own (its own cookies), at the fixed viewport, with
    its dialogs recorded; ``bypass_csp``: the page's Content-Security-Policy ignored, so
    what is checked is the escaping alone. Checks, at the end, that no dialog opened."""
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=bypass_csp)
    dialogs = Dialogs()
    context.on("dialog", dialogs)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        yield page, dialogs
        dialogs.assert_none()
    finally:
        context.close()


def sign_in(page: Page, base: str, user: str, password: str | None = None) -> None:
    """Signed in through the sign-in form, as a person would: on the services page."""
    page.goto(f"{base}/login")
    page.fill('input[name="user"]', user)
    page.fill('input[name="password"]', PASSWORDS[user] if password is None else password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/")


# The extent of what a page shows: its text and its controls and tables (block elements
# span the window, so they do not count), in page coordinates.
_EXTENT = """() => {
  let right = 0, bottom = 0;
  const grow = r => { right = Math.max(right, r.right); bottom = Math.max(bottom, r.bottom); };
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  while (texts.nextNode()) {
    if (!texts.currentNode.textContent.trim()) continue;
    range.selectNodeContents(texts.currentNode);
    grow(range.getBoundingClientRect());
  }
  for (const each of document.querySelectorAll("input, button, select, table")) {
    grow(each.getBoundingClientRect());
  }
  return [Math.ceil(right + window.scrollX), Math.ceil(bottom + window.scrollY)];
}"""
_MARGIN = 20  # pixels kept around the content


def screenshot(page: Page, name: str) -> None:
    """With ``SKYFLOW_SCREENSHOTS=DIR`` set: the page as a PNG, ``DIR/NAME.png``, cut to
    its content (the documentation's pictures are made this way)."""
    folder = os.environ.get(SCREENSHOTS)
    if not folder:
        return
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"screenshot name {name!r}: lower-case letters, digits and dashes")
    Path(folder).mkdir(parents=True, exist_ok=True)
    right, bottom = page.evaluate(_EXTENT)
    clip: FloatRect = {"x": 0, "y": 0, "width": right + _MARGIN, "height": bottom + _MARGIN}
    page.screenshot(path=str(Path(folder) / f"{name}.png"), clip=clip, full_page=True)


class Relay:
    """A TCP relay on a free loopback port to ``port``, whose connections can be cut: a
    network between the browser and the UI that fails (``cut``: every open connection
    closed, and each new one closed as soon as it comes) and comes back (``mend``). The
    UI stays up, with its sessions and its connections to NATS, as it would in a blip."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.broken = False
        self.refused = 0  # connections closed as they came, while cut
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                if self.broken:
                    near.close()
                    self.refused += 1
                    continue
                far = socket.create_connection(("127.0.0.1", self.target))
                self.open |= {near, far}
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for each in (source, sink):  # one side ended: so does the other
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
        source.close()  # each socket is the source of one pump

    def cut(self) -> None:
        with self.lock:
            self.broken = True
            for each in self.open:
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def mend(self) -> None:
        with self.lock:
            self.broken = False

    def close(self) -> None:
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        self.accepting.join(30)
