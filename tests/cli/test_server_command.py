"""``skyctl server``: the bundled server in the foreground, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import skyctl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_server_runs_the_bundled_config_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    store = tmp_path / "data"
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "server", "--store-dir", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"nats://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if skyctl("get", "svc", url=url).code == 0:
                break
            time.sleep(0.2)
        created = skyctl("create", "service", "myService", "-p", "80:8080", url=url)
        assert created.out == "service/myService created\n"
        assert (store / "jetstream").is_dir()  # JetStream file storage in the chosen dir
    finally:
        server.send_signal(stop)
        _, err = server.communicate(timeout=15)
    assert server.returncode == 0
    assert "Traceback" not in err
    assert f"serving nats://127.0.0.1:{port}" in err
    assert "sync_interval" not in err  # the config parsed without complaint


def test_server_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "server",
                "--store-dir",
                str(tmp_path),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ},
        )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("error: nats-server exited")
    assert "Traceback" not in result.stderr
