"""The kernel and real traffic for the proxy's tests.

The kernel's tables are the machine's, not a test's: each test gets a table of its own
name, removed afterwards, and tests that program the kernel take a lock, so two xdist
workers never forward the same address at once. Where nftables cannot be used (not root,
no ``nft``), those tests are skipped and say why.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.proxy.nftables import Nftables

_LOCK = Path("/tmp/skyflow-tests-nftables.lock")


def nftables_unusable() -> str | None:
    """Why the kernel mode cannot be tested here, or None."""
    why = Nftables.available()
    if why is not None:
        return why
    probe = f"skyflow_probe_{os.getpid()}"
    done = subprocess.run(
        ["nft", "-f", "-"],
        input=f"add table ip {probe}\ndelete table ip {probe}\n",
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"nft cannot change tables: {done.stderr.strip()}"


@pytest.fixture
def nft_table() -> Iterator[str]:
    """A table name of this test's own, the kernel to itself, and the table gone after."""
    why = nftables_unusable()
    if why is not None:
        pytest.skip(f"kernel mode not testable here: {why}")
    table = f"skyflow_t{uuid.uuid4().hex[:10]}"
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield table
        finally:
            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
