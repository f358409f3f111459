"""What tests share besides fixtures: running ``skyctl``, and reaching the server around
the registry with plain nats-py (to forge, poison or inspect what is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import PubAck

from registry.jetstream import open_log


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
