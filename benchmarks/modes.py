"""The set-ups a one-shot command is timed in: what users run, not only the demo.

Each mode is a running server (or cluster) and the environment both ``skyctl`` and the raw
nats-py baseline get, so the two connect the same way: several URLs, TLS with a CA,
user/password. Every server is the project's own configuration (fsync on every write).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import raw
from registry.jetstream.server import NatsServer
from tests.servers import PASSWORDS, auth_server, tls_server

__all__ = ["MODES", "Mode", "running"]

MODES = ("plain", "cluster", "tls", "auth")
_ADMIN = {"NATS_USER": "admin", "NATS_PASSWORD": PASSWORDS["admin"]}


@dataclass
class Mode:
    name: str
    label: str  # how the table names it
    url: str
    env: dict[str, str] = field(default_factory=dict)  # NATS_* for skyctl and the baseline

    def client_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
        return {**base, "NATS_URL": self.url, **self.env}


def _init_replicas(mode: Mode, replicas: int) -> None:
    """``skyctl init --replicas N``, retried while the new cluster elects its leaders."""
    deadline = time.monotonic() + 30
    while True:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "init", "--replicas", str(replicas)],
            env=mode.client_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"skyctl init on {mode.name} failed: {proc.stderr}")
        time.sleep(0.5)


@contextlib.contextmanager
def running(name: str, root: Path) -> Iterator[Mode | None]:
    """The mode's server(s), up for the duration; None if this machine cannot run it."""
    root.mkdir(parents=True, exist_ok=True)
    if name == "plain":
        with NatsServer(root / "store") as server:
            mode = Mode(name, "", server.url)
            raw.ensure_bench_stream_sync(mode.client_env())
            yield mode
    elif name == "cluster":
        from tests.cluster import LocalCluster

        with LocalCluster(root / "cluster") as cluster:
            mode = Mode(name, "3-node cluster, 3 URLs", ",".join(cluster.urls))
            _init_replicas(mode, 3)
            raw.ensure_bench_stream_sync(mode.client_env(), replicas=3)
            yield mode
    elif name == "auth":
        with auth_server(root) as server:
            mode = Mode(name, "user/password", server.url, _ADMIN)
            raw.ensure_bench_stream_sync(mode.client_env())
            yield mode
    elif name == "tls":
        if importlib.util.find_spec("trustme") is None:  # a test extra
            yield None
            return
        with tls_server(root) as (server, files):
            env = {**_ADMIN, "NATS_CA": str(files.ca)}
            mode = Mode(name, "tls:// with a CA, user/password", server.url, env)
            raw.ensure_bench_stream_sync(mode.client_env())
            yield mode
    else:
        raise ValueError(f"unknown mode {name!r}; known: {', '.join(MODES)}")
