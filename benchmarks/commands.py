"""One-shot commands as fresh processes, timed from start to exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

__all__ = ["free_port", "skyctl_command", "timed"]


def skyctl_command() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "skyctl"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]


def timed(command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """Milliseconds from starting ``command`` to its exit (RuntimeError if it failed)."""
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr}")
    return elapsed * 1000


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for a server told its port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
