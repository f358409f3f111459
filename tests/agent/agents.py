"""The node agent in tests: a ``skyctl agent`` process, a request sent as the thin client
sends it, its counters, and a namespace to read."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from events import Port, Service
from registry import Registry
from registry.agent.client import ask
from registry.agent.wire import Reply, Request
from tests.helpers import _environment, running

__all__ = ["READY", "agent", "seed", "socket_folder", "status", "through"]

READY = "agent: answering reads on "


@contextlib.contextmanager
def socket_folder() -> Iterator[Path]:
    """A folder for the agent's socket that other users may traverse (pytest's own
    temporary folders are private to root), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="skyflow-agent-test-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def agent(url: str) -> AsyncIterator[str]:
    """A ``skyctl agent`` process for ``url``; its socket's path."""
    with socket_folder() as folder:
        path = str(folder / "agent.sock")
        async with running("agent", "--socket", path, url=url, ready=READY):
            yield path


def through(path: str, url: str, *argv: str, env: dict[str, str] | None = None) -> Reply:
    """The agent's reply to a command line, sent as the thin client sends it."""
    environment = _environment(url, {"SKYFLOW_AGENT": path, **(env or {})})
    reply, why = ask(path, Request(list(argv), environment, os.getcwd()))
    assert reply is not None, why
    return reply


def status(path: str) -> dict[str, Any]:
    reply, why = ask(path, Request([], {}, "/", status=True))
    assert reply is not None and reply.status == "status", why
    return reply.info


async def seed(registry: Registry, ns: str) -> None:
    await registry.create(
        Service(
            namespace=ns,
            name="web",
            selector={"app": "web"},
            ports=[Port(port=80, target_port=8080, name="http")],
            labels={"tier": "front"},
        )
    )
    await registry.create(
        Service(
            namespace=ns,
            name="db",
            selector={"app": "db"},
            ports=[Port(port=5432, target_port=5432)],
        )
    )
    await registry.apply(
        Service(
            namespace=ns,
            name="web",
            selector={"app": "web"},
            ports=[Port(port=80, target_port=8080, name="http"), Port(port=443, target_port=8443)],
            labels={"tier": "front"},
        )
    )
