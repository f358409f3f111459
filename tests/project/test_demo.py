"""``scripts/demo``, the README's first command, is safe on a machine that already talks to
a NATS server: it runs its own server on its own port, writes nothing to the exported
``NATS_URL``, ends with a live endpoint reached through ``get endpoints``, DNS and the web
UI, reuses its server on a second run, and ``scripts/demo stop`` stops everything it
started."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from registry.jetstream.server import NatsServer
from tests.helpers import raw_nats
from tests.servers import ROOT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _streams(url: str) -> list[str]:
    async with raw_nats(url) as nc:
        reply = await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=5)
        return list(json.loads(reply.data).get("streams") or [])


def test_the_demo_uses_its_own_server_and_leaves_an_endpoint_to_explore(
    fresh_server: NatsServer, tmp_path: Path
) -> None:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    for name in ("demo", "_venv.sh"):
        shutil.copy2(ROOT / "scripts" / name, copy / "scripts" / name)
    venv = Path(sys.prefix)  # skyctl is installed here already
    env = {
        **os.environ,
        "NATS_URL": fresh_server.url,  # the user's own server: never written to
        "VENV": str(venv),
        "PYTHON": sys.executable,
        "SKYFLOW_DEMO_INSTALL": "0",
        "SKYFLOW_DEMO_PORT": str(_free_port()),
        "SKYFLOW_DEMO_DNS_PORT": str(_free_port()),
        "SKYFLOW_DEMO_UI_PORT": str(ui_port := _free_port()),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    demo = [str(copy / "scripts" / "demo")]
    try:
        first = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "service/myService created" in first.stdout
        assert "# started the bundled nats-server" in first.stdout
        assert "web    127.0.0.1:8080" in first.stdout, first.stdout  # get endpoints
        assert "web.demo.svc.skyflow. 5 IN A 127.0.0.1" in first.stdout, first.stdout  # DNS
        assert f"# the web UI: http://127.0.0.1:{ui_port}/" in first.stdout, first.stderr
        table = f"http://127.0.0.1:{ui_port}/services/table?namespace=demo"
        with urllib.request.urlopen(table, timeout=30) as page:  # the UI, live
            assert '<a href="/services/demo/web">web</a>' in page.read().decode()
        again = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout and "# started" not in again.stdout
    finally:
        stop = subprocess.run([*demo, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0 and "stopped server" in stop.stdout, stop
    assert "stopped ui" in stop.stdout, stop
    assert asyncio.run(_streams(fresh_server.url)) == []  # nothing written to the user's
    assert not list((copy / ".skyflow").glob("*.pid"))
