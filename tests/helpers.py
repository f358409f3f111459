"""What tests share besides fixtures: running ``skyctl``, and reaching the server around
the registry with plain nats-py (to forge, poison or inspect what is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _environment(url: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
    """A command's environment: this one's, less any NATS_* of the developer's, plus
    ``NATS_URL`` and ``env``."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("NATS_") and k != "SKYFLOW_CONTEXT"
    }
    # The developer's own nats CLI contexts (a selected one would lend every test its
    # user) stay out of it: contexts are read from an empty directory unless ``env``
    # names one.
    environment["XDG_CONFIG_HOME"] = _NO_CONTEXTS
    # Nor the developer's node agent: a test's commands use one only where it starts one.
    environment["SKYFLOW_AGENT"] = "off"
    if url is not None:
        environment["NATS_URL"] = url
    environment.update(env or {})
    return environment


_NO_CONTEXTS = tempfile.mkdtemp(prefix="skyctl-no-contexts-")


def skyctl(
    *args: str,
    url: str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    stdin: str = "",
) -> Result:
    """Run ``skyctl`` in this process, as a new process would see it: its arguments, an
    environment of its own, ``stdin``, and its stdout, stderr and exit code (a traceback
    lands in stderr with code 1, as Python prints one). About 20 times cheaper than a
    process; ``skyctl_process`` is for tests whose subject is the process itself.

    It runs in a thread of its own, so an async test may call it from its event loop
    (which waits for it, as it would for a process).
    """
    environment = _environment(url, env)
    with _ONE_AT_A_TIME:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _main(list(args), environment, stdin)  # as a process would: main thread
        # Called from an event loop (an async test): the command's own asyncio.run needs
        # a thread without one. The thread is waited for to its end, so nothing of the
        # command (a task's last log line, say) runs on beside the test.
        pool = ThreadPoolExecutor(1, thread_name_prefix="skyctl")
        try:
            return pool.submit(_main, list(args), environment, stdin).result(timeout=timeout)
        finally:
            pool.shutdown(wait=True)


_ONE_AT_A_TIME = threading.Lock()  # the environment and sys.std* are the process's


def _main(argv: list[str], environment: dict[str, str], stdin: str) -> Result:
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_environment = dict(os.environ)
    root = logging.getLogger()
    saved_logging = (root.handlers[:], root.level)
    # What ``logging.basicConfig`` in ``main`` gives a new process (here it finds the
    # test runner's handlers and would do nothing).
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("skyctl: %(message)s"))
    root.handlers, saved_stdin = [handler], sys.stdin
    root.setLevel(logging.ERROR)
    os.environ.clear()
    os.environ.update(environment)
    code = 0
    try:
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
    finally:
        sys.stdin = saved_stdin
        os.environ.clear()
        os.environ.update(saved_environment)
        root.handlers, _ = saved_logging
        root.setLevel(saved_logging[1])
    return Result(code, out.getvalue(), err.getvalue())


def skyctl_process(
    *args: str,
    url: str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    stdin: str | None = None,
) -> Result:
    """Run the real ``skyctl`` in a new process, for tests of the process itself:
    start-up, imports, signals, exit codes as the shell sees them."""
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=_environment(url, env),
        timeout=timeout,
        input=stdin,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Lines:
    """A process's stdout, line by line as it comes, each with when it came: waited for
    with a timeout instead of a hang."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self._queue.put(line)

    def next(self, timeout: float = 10) -> str:
        """The next line, newline and all (``queue.Empty`` after ``timeout``)."""
        return self._queue.get(timeout=timeout)

    async def wait_for(self, check: Callable[[str], bool], timeout: float = 15) -> float:
        """``time.monotonic()`` of the first line passing ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if check(line):
                    return when
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such line in {[line for _, line in self.lines]}")


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> float:
    """Seconds until ``check`` holds; fails naming ``what`` past ``timeout``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, f"never: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


STARTED: list[subprocess.Popen[str]] = []  # stopped after each test (conftest)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start(*args: str, url: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    """``skyctl`` in a process of its own (stopped at the end of the test); with
    ``sigint_ignored`` as a shell starts a background job (``cmd &`` in a script)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        env=_environment(url, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    STARTED.append(proc)
    return proc


@contextlib.asynccontextmanager
async def running(*args: str, url: str, ready: str) -> AsyncIterator[Lines]:
    """``skyctl`` in a process of its own, its lines once one starts with ``ready``;
    SIGTERM when the block ends."""
    proc = start(*args, url=url)
    lines = Lines(proc)
    await lines.wait_for(lambda line: line.startswith(ready), timeout=30)
    try:
        yield lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 15)


def stop_started() -> None:
    """Kill whatever ``start`` started that still runs, and reap it."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


class Raw:
    """A plain nats-py client as one user, collecting the server's refusals."""

    def __init__(self, user: str, nc: NatsClient, errors: list[str]) -> None:
        self.user, self.nc, self.errors = user, nc, errors

    async def refused(self, operation: str) -> bool:
        await self.nc.flush()
        await asyncio.sleep(0.1)
        return any(operation in e.lower() for e in self.errors)


@contextlib.asynccontextmanager
async def raw_as(url: str, user: str, password: str) -> AsyncIterator[Raw]:
    """A plain nats-py connection as ``user`` of ``nats-server-auth.conf`` (replies under
    its own inbox prefix, as the configuration requires), collecting its refusals."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    nc = await nats.connect(
        url, user=user, password=password, inbox_prefix=inbox, error_cb=on_error
    )
    try:
        yield Raw(user, nc, errors)
    finally:
        await nc.close()


class NatsHome:
    """A home directory of the test's own holding nats CLI contexts
    (``.config/nats/context/<name>.json``, the selected one in ``.config/nats/context.txt``),
    and the environment that makes ``skyctl`` look there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / ".config"
        self.contexts = self.config / "nats" / "context"
        self.contexts.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.root), "XDG_CONFIG_HOME": str(self.config)}

    def write(self, name: str, **settings: object) -> Path:
        """A context as ``nats context save`` writes it (0600, indented JSON)."""
        path = self.contexts / f"{name}.json"
        path.write_text(json.dumps(settings, indent=2))
        path.chmod(0o600)
        return path

    def read(self, name: str) -> dict[str, Any]:
        data = json.loads((self.contexts / f"{name}.json").read_text())
        assert isinstance(data, dict)
        return data

    def select(self, name: str) -> None:
        (self.config / "nats" / "context.txt").write_text(name)

    @property
    def selected(self) -> str:
        return (self.config / "nats" / "context.txt").read_text().strip()
