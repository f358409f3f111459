"""The examples are real subscribers; run them against a real server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.services.projection import ServiceRecord
from tests.helpers import skyctl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def wait_for(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_lb_config_follows_the_registry_across_restarts(
    fresh_server: NatsServer, tmp_path: Path
) -> None:
    url = fresh_server.url
    output = tmp_path / "upstreams.conf"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(EXAMPLES / "lb_config.py"), str(output), "--server", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def text() -> str:
        return output.read_text() if output.exists() else ""

    skyctl(
        "create",
        "service",
        "myService",
        "-t",
        "LoadBalancer",
        "-s",
        "app=myApp",
        "-p",
        "80:8080",
        "-c",
        "myCluster",
        url=url,
    )
    follower = start()
    wait_for(lambda: "upstream default__myService__80" in text())
    assert "server myService.default.svc.myCluster:8080 resolve;" in text()

    skyctl("create", "service", "api", "-n", "shop", "-p", "443:8443", url=url)
    wait_for(lambda: "upstream shop__api__443" in text())

    follower.send_signal(signal.SIGTERM)
    _, err = follower.communicate(timeout=10)
    assert follower.returncode == 0, err
    # While it is down, the registry moves on.
    skyctl("delete", "service", "myService", url=url)
    skyctl("create", "service", "db", "-n", "shop", "-p", "5432", url=url)

    follower = start()
    try:
        wait_for(lambda: "shop__db__5432" in text() and "myService" not in text())
        assert "shop__api__443" in text()
        db = asyncio.run(_get(url, "shop", "db"))
        assert f"# registry log sequence {db.seq}" in text()  # its last service event
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=10)


def test_lb_upstreams_follows_live_endpoints(fresh_server: NatsServer, tmp_path: Path) -> None:
    """The Resolver example: the upstream holds the ready endpoints, gains an announced
    task, loses a withdrawn one, and leaves a not-ready one out."""
    url = fresh_server.url
    output = tmp_path / "upstreams.conf"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NATS_")}, "NATS_URL": url}
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    def announce(name: str, address: str, *flags: str) -> subprocess.Popen[str]:
        return start(
            "-m", "cli", "announce", "task", name, "-n", "shop", "--labels", "app=web",
            "--address", address, *flags,
        )  # fmt: skip

    def text() -> str:
        return output.read_text() if output.exists() else ""

    created = skyctl(
        "create", "service", "web", "-n", "shop", "-s", "app=web", "-p", "80:8080", url=url
    )
    assert created.code == 0, created.err
    try:
        start(str(EXAMPLES / "lb_upstreams.py"), "shop/web", str(output))
        wait_for(lambda: "# shop/web: 0/0 endpoints ready" in text())
        assert "server 127.0.0.1:1 down;" in text()  # nginx refuses an empty upstream
        first = announce("web-1", "10.0.0.1")
        announce("web-2", "10.0.0.2", "--not-ready")
        wait_for(lambda: "# shop/web: 1/2 endpoints ready" in text())
        assert "upstream shop__web__80 {" in text()
        assert "    server 10.0.0.1:8080;  # task web-1" in text()
        assert "10.0.0.2" not in text()
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=10)
        wait_for(lambda: "# shop/web: 0/1 endpoints ready" in text(), timeout=2)
        assert "10.0.0.1" not in text()
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)


@pytest.mark.skipif(shutil.which("npm") is None, reason="Node.js and npm are not installed")
def test_javascript_subscriber_folds_the_same_log(fresh_server: NatsServer, tmp_path: Path) -> None:
    workdir = tmp_path / "js"
    shutil.copytree(EXAMPLES / "js", workdir, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=300,
    )
    url = fresh_server.url
    skyctl("create", "service", "myService", "-p", "80:8080", url=url)
    skyctl("create", "service", "web", "-p", "443", url=url)
    skyctl("delete", "service", "myService", url=url)
    ips = {r.service.name: r.service.cluster_ip for r in asyncio.run(_list(url))}
    result = subprocess.run(
        ["node", "subscriber.mjs", "default"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NATS_URL": url, "MAX_EVENTS": "3"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # (the address records on their own subjects are not the subscriber's business)
    assert re.match(r"ADDED default/myService ClusterIP 10\.\S+ 80:8080/TCP by ", lines[0])
    assert lines[1].startswith(f"ADDED default/web ClusterIP {ips['web']} 443:443/TCP")
    assert lines[2].startswith("DELETED default/myService")
    assert lines[3] == "live: default/web"


async def _list(url: str) -> list[ServiceRecord]:
    async with await Registry.connect(url) as registry:
        return await registry.list()


async def _get(url: str, namespace: str, name: str) -> ServiceRecord:
    async with await Registry.connect(url) as registry:
        return await registry.get(namespace, name)
