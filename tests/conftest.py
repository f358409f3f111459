"""Fixtures: a real nats-server per test session, on a free loopback port.

The server runs the project's own ``nats-server.conf`` with a temporary store and is
stopped by PID at the end. NATS is never mocked; tests isolate themselves from each
other by using a namespace of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from registry.client import Registry
from registry.jetstream.server import NatsServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats") / "store"
    with NatsServer(store) as server:
        yield server


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of the test's own, for tests that stop, kill or restart it."""
    server = NatsServer(tmp_path / "store").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def ns() -> str:
    """A namespace no other test uses."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def registry(url: str) -> AsyncIterator[Registry]:
    async with await Registry.connect(url) as reg:
        yield reg


# -- figures for the README's reliability section ------------------------------------------

_FIGURES: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Record a measured figure; all are printed at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured")
        for line in _FIGURES:
            terminalreporter.write_line(line)
