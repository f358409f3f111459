"""Fixtures: a real nats-server per test session, on a free loopback port.

The server runs the project's own ``nats-server.conf`` with a temporary store and is
stopped by PID at the end. NATS is never mocked; tests isolate themselves from each
other by using a namespace of their own.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from registry.client import Registry
from registry.jetstream.server import NatsServer
from tests.helpers import stop_started

# Property tests in the suite assert behaviour, never speed: no per-example deadline and
# no "input generation is slow" check (both are timings, and fail on a loaded machine),
# and a fixed sequence of examples, so CI cannot fail on an example no earlier run met.
# HYPOTHESIS_PROFILE=explore searches afresh, as a developer hunting bugs would.
settings.register_profile(
    "suite",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=2000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def pytest_configure(config: pytest.Config) -> None:
    """Tests stop the commands they start with SIGINT, as a user's Ctrl-C would. A test run
    started in the background of a script (``./scripts/test &``) begins with SIGINT
    ignored, and every process it starts would inherit that and never stop: take Ctrl-C
    back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(autouse=True)
def _stop_started_processes() -> Iterator[None]:
    """Whatever a test started with ``tests.helpers.start`` is stopped when it ends."""
    yield
    stop_started()


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


# -- figures measured on the way ------------------------------------------------------------

_FIGURES: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure; all are printed at the end of the run (from whichever
    worker measured them: they travel with the test's report)."""

    def record(line: str) -> None:
        request.node.user_properties.append(("measured", line))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FIGURES.extend(str(value) for key, value in report.user_properties if key == "measured")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured")
        for line in _FIGURES:
            terminalreporter.write_line(line)
