"""The agent's socket: made safely, used only by its own user, each request handed to
the host one at a time.

One at a time because a hosted command runs as its client would have, with the client's
environment and working directory, which are the process's; a read takes the agent a
few milliseconds, so a thousand clients at once wait in line (in the listen backlog and
then here) rather than being dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import socket
import stat
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from registry.agent.client import replaceable
from registry.agent.wire import (
    MAX_REQUEST,
    BadMessage,
    Reply,
    Request,
    decode_request,
    encode_reply,
)
from registry.errors import InvalidInput

__all__ = ["AgentServer", "Counters", "Handler", "prepare_path"]

Handler = Callable[[Request], Reply]
# How long a client may take to send its request: one line it already has.
REQUEST_DEADLINE_S = 10.0
BACKLOG = 4096


@dataclass
class Counters:
    """What the agent has done since it started (``skyctl agent --status``)."""

    started: float = field(default_factory=time.time)
    served: int = 0
    direct: int = 0
    refused: int = 0
    broken: int = 0


def prepare_path(path: str) -> None:
    """Make ``path`` ready to bind: its folder exists and is private (made 0700 when it
    is ours to make), and nothing answers there already (a socket left by an agent that
    died is removed; anything else is refused)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, mode=0o700)
        except OSError as exc:
            raise InvalidInput("socket", path, f"cannot make its folder: {exc.strerror}") from None
    if replaceable(os.stat(folder)):
        raise InvalidInput("socket", path, "its folder can be written by others")
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(existing.st_mode) or existing.st_uid != os.getuid():
        raise InvalidInput("socket", path, "something else is there; remove it or choose another")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
        os.unlink(path)  # an agent that died left it: nobody listens
    else:
        raise InvalidInput("socket", path, "another agent answers there already")
    finally:
        probe.close()


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _, uid, _ = struct.unpack("3i", raw)
    return int(uid)


def _more_files() -> None:
    """A thousand clients at once are a thousand open sockets: raise the soft limit on
    open files to the hard one (the default 1,024 would refuse some of them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class AgentServer:
    """Answers on a unix socket (mode 0600) for as long as it is open."""

    def __init__(self, path: str, handler: Handler, counters: Counters | None = None) -> None:
        self.path = path
        self.handler = handler
        self.counters = counters or Counters()  # (the host's, when it reports them)
        self._me = os.getuid()
        # One thread: requests run one after another (see the module's docstring).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skyflow-agent")
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        prepare_path(self.path)
        _more_files()
        old = os.umask(0o177)  # the socket is 0600 from the moment it exists
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=self.path, backlog=BACKLOG, limit=MAX_REQUEST + 1
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(reader, writer)
            writer.write(encode_reply(reply))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.counters.broken += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Reply:
        sock = writer.get_extra_info("socket")
        uid = _peer_uid(sock) if sock is not None else None
        try:
            # Read first, whoever asks: a reply sent before the request is read would meet
            # a client still writing it (a broken pipe instead of the reason).
            async with asyncio.timeout(REQUEST_DEADLINE_S):  # (not wait_for: see pyproject)
                line: bytes | None = await reader.readuntil(b"\n")
        except (asyncio.LimitOverrunError, ValueError, TimeoutError):
            line = None
        if uid is None or uid not in (self._me, 0):
            # The socket is 0600, so only a changed mode lets another user this far.
            self.counters.refused += 1
            why = f"uid {uid} may not use the agent of uid {self._me}"
            return Reply("refused", code=1, why=why)
        try:
            if line is None:
                raise BadMessage("no request line")
            request = decode_request(line)
        except BadMessage as exc:
            self.counters.broken += 1
            return Reply("refused", code=2, why=str(exc))
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self._worker, self.handler, request)
        if reply.status == "done":
            self.counters.served += 1
        elif reply.status == "direct":
            self.counters.direct += 1
        return reply
