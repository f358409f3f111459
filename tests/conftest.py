"""Fixtures: a real nats-server per test session, on a free loopback port.

The server runs the project's own ``nats-server.conf`` with a temporary store and is
stopped by PID at the end. NATS is never mocked; tests isolate themselves from each
other by using a namespace of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import PubAck

from registry.client import Registry
from registry.jetstream import open_log
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


async def stream_last_seq(url: str) -> int:
    async with await open_log(url) as log:
        return await log.last_sequence()


@contextlib.asynccontextmanager
async def raw_nats(url: str) -> AsyncIterator[NatsClient]:
    """A plain nats-py connection beside the registry: how a test writes around it."""
    nc = await nats.connect(url.split(","))
    try:
        yield nc
    finally:
        await nc.close()


async def raw_publish(
    url: str, subject: str, data: bytes, headers: Mapping[str, str] | None = None
) -> PubAck:
    """Publish straight to the stream, around the registry (poison, forgeries)."""
    async with raw_nats(url) as nc:
        return await nc.jetstream().publish(subject, data, headers=dict(headers or {}))


def last_seq(url: str) -> int:
    return asyncio.run(stream_last_seq(url))


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def skyctl(
    *args: str, url: str | None, env: dict[str, str] | None = None, timeout: float = 30
) -> Result:
    """Run the real ``skyctl`` in a new process, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    if url is not None:
        full_env["NATS_URL"] = url
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


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
