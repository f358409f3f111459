"""The NATS client protocol spoken directly, for one-shot processes and bulk reads.

Importing nats-py costs a one-shot ``skyctl`` process more than everything else it
does (``notes/nats-facts.md`` section 7: about 60 ms on top of asyncio, with no lighter
path inside nats-py), and its per-message machinery caps a replay at about 100k
messages/s. The part of the protocol a short-lived client needs is small: ``INFO`` ->
``CONNECT`` -> ``PING``/``PONG``, ``SUB``/``UNSUB``, ``PUB``/``HPUB``, and reading
``MSG``/``HMSG``. That is all this module does.

What it does not do, it refuses with ``NeedsNatsPy`` before sending anything, and the
caller falls back to nats-py: TLS, NKey/JWT credentials, websockets. It never
reconnects; a one-shot command that loses its connection fails and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

__all__ = [
    "Handler",
    "NeedsNatsPy",
    "NoResponders",
    "PermissionViolation",
    "ProtocolError",
    "Reply",
    "WireClient",
    "parse_headers",
]

# subject, reply subject, raw header block (None for MSG), payload
Handler = Callable[[str, str, bytes | None, bytes], None]

T = TypeVar("T")
_CRLF = b"\r\n"
_MAX_LINE = 64 * 1024


class NeedsNatsPy(Exception):
    """This server or these options need a feature only nats-py has (TLS, NKeys, ...)."""


class ProtocolError(Exception):
    """The server sent ``-ERR``, closed the connection, or said something unreadable."""


class NoResponders(Exception):
    """Nobody listens on the subject of a request (status 503)."""


class PermissionViolation(Exception):
    """The server refused this user a publish: ``-ERR 'Permissions Violation ...'``."""


_VIOLATION = re.compile(r"permissions violation for publish to \"([^\"]*)\"", re.I)


def parse_headers(block: bytes) -> tuple[str | None, str, dict[str, str]]:
    """``(status, description, headers)`` of a ``NATS/1.0 ...`` header block."""
    lines = block.decode().split("\r\n")
    first = lines[0][len("NATS/1.0") :].strip()
    status, _, description = first.partition(" ")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    return (status or None), description.strip(), headers


def encode_headers(headers: dict[str, str]) -> bytes:
    lines = ["NATS/1.0"]
    for key, value in headers.items():
        if not key or any(c in key for c in ": \r\n") or "\r" in value or "\n" in value:
            raise ValueError(f"bad header {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True, slots=True)
class Reply:
    """One message received in answer to a request."""

    subject: str
    headers: dict[str, str]
    data: bytes
    status: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Address:
        text = url.strip()
        if "://" not in text:
            text = f"nats://{text}"
        parts = urlsplit(text)
        if parts.scheme != "nats":
            raise NeedsNatsPy(f"scheme {parts.scheme}://")
        if "," in parts.netloc:
            raise NeedsNatsPy("several servers")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 4222,
            user=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )


class WireClient:
    """One connection to one server; requests, publishes and subscriptions over it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: dict[str, Any]
    ) -> None:
        self.info = info
        self._reader = reader
        self._writer = writer
        self._handlers: dict[int, Handler] = {}
        self._next_sid = 1
        self._pongs: list[asyncio.Future[None]] = []
        self._prefix = f"_INBOX.{os.urandom(12).hex()}"
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._asked: dict[str, str] = {}  # request token -> the subject it was sent to
        self._next_token = 0
        self._reply_sid: int | None = None
        self.last_error: str | None = None
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    # -- connecting --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        name: str = "skyctl",
        wait_s: float = 2.0,
    ) -> WireClient:
        """Connect and authenticate; ``NeedsNatsPy`` if the server asks for more.

        Raises ``OSError`` (refused, unreachable), ``TimeoutError``, or ``ProtocolError``
        (the server refused us, e.g. ``Authorization Violation``).
        """
        address = Address.parse(url)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address.host, address.port, limit=_MAX_LINE), wait_s
        )
        try:
            line = await asyncio.wait_for(reader.readline(), wait_s)
            if not line.startswith(b"INFO "):
                raise ProtocolError(f"expected INFO, got {line[:40]!r}")
            info = json.loads(line[5:])
            if info.get("tls_required") or info.get("tls_handshake_first"):
                raise NeedsNatsPy("the server requires TLS")
            options: dict[str, Any] = {
                "verbose": False,
                "pedantic": False,
                "lang": "python-skyflow-wire",
                "version": "1",
                "protocol": 1,
                "headers": True,
                "no_responders": True,
                "name": name,
            }
            user = user if user is not None else address.user
            password = password if password is not None else address.password
            if user is not None and password is not None:
                options.update(user=user, **{"pass": password})
            elif token is not None:
                options["auth_token"] = token
            elif user is not None:  # nats://token@host
                options["auth_token"] = user
            writer.write(b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), wait_s)
                if not line:
                    raise ProtocolError("the server closed the connection")
                if line.startswith(b"PONG"):
                    break
                if line.startswith(b"-ERR"):
                    raise ProtocolError(_error_text(line))
                if line.startswith(b"PING"):
                    writer.write(b"PONG\r\n")
                # INFO updates and +OK need no answer
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, info)

    async def close(self) -> None:
        if not self._writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                await self._writer.drain()
            self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await self._task
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    # -- sending -----------------------------------------------------------------------

    def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        if self.closed.is_set():
            raise ProtocolError(self.last_error or "connection closed")
        target = f"{subject} {reply}" if reply else subject
        if headers:
            block = encode_headers(headers)
            head = f"HPUB {target} {len(block)} {len(block) + len(payload)}\r\n".encode()
            self._writer.write(b"".join((head, block, payload, _CRLF)))
        else:
            head = f"PUB {target} {len(payload)}\r\n".encode()
            self._writer.write(b"".join((head, payload, _CRLF)))

    def subscribe(self, subject: str, handler: Handler) -> int:
        sid = self._next_sid
        self._next_sid += 1
        self._handlers[sid] = handler
        self._writer.write(f"SUB {subject} {sid}\r\n".encode())
        return sid

    def unsubscribe(self, sid: int) -> None:
        if self._handlers.pop(sid, None) is not None and not self.closed.is_set():
            self._writer.write(f"UNSUB {sid}\r\n".encode())

    def new_inbox(self) -> str:
        return f"{self._prefix}.s{os.urandom(6).hex()}"

    async def ping(self, wait_s: float) -> None:
        """A round trip: everything sent before it has been processed by the server."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(future)
        self._writer.write(b"PING\r\n")
        await self._wait(future, wait_s)

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        wait_s: float,
    ) -> Reply:
        """The first reply; ``NoResponders`` if nobody listens, ``TimeoutError``."""
        if self._reply_sid is None:
            self._reply_sid = self.subscribe(f"{self._prefix}.r.*", self._on_reply)
        self._next_token += 1
        token = str(self._next_token)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._replies[token] = future
        self._asked[token] = subject
        try:
            self.publish(subject, payload, reply=f"{self._prefix}.r.{token}", headers=headers)
            reply = await self._wait(future, wait_s)
        finally:
            self._replies.pop(token, None)
            self._asked.pop(token, None)
        if reply.status == "503":
            raise NoResponders(subject)
        return reply

    async def _wait(self, future: asyncio.Future[T], wait_s: float) -> T:
        if self.closed.is_set():
            raise ProtocolError(self.last_error or "connection closed")
        return await asyncio.wait_for(future, wait_s)

    def _on_reply(self, subject: str, _reply: str, header: bytes | None, data: bytes) -> None:
        future = self._replies.get(subject.rpartition(".")[2])
        if future is None or future.done():
            return
        status, description, headers = parse_headers(header) if header else (None, "", {})
        future.set_result(Reply(subject, headers, data, status, description))

    # -- receiving ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        buffer = b""
        read = self._reader.read
        try:
            while True:
                chunk = await read(1 << 18)
                if not chunk:
                    self.last_error = self.last_error or "the server closed the connection"
                    return
                buffer = self._parse(buffer + chunk if buffer else chunk)
        except (OSError, ProtocolError, ValueError) as exc:
            self.last_error = self.last_error or str(exc) or type(exc).__name__
        finally:
            self.closed.set()
            lost = ProtocolError(self.last_error or "connection closed")
            pending: list[asyncio.Future[Any]] = [*self._replies.values(), *self._pongs]
            for future in pending:
                if not future.done():
                    future.set_exception(lost)

    def _parse(self, data: bytes) -> bytes:
        """Dispatch every complete operation in ``data``; return the incomplete rest."""
        pos = 0
        size = len(data)
        handlers = self._handlers
        find = data.find
        startswith = data.startswith
        while pos < size:
            end = find(b"\r\n", pos)
            if end < 0:
                break
            if startswith(b"HMSG ", pos):
                # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                parts = data[pos + 5 : end].split(b" ")
                header_size, total = int(parts[-2]), int(parts[-1])
                start = end + 2
                stop = start + total
                if stop + 2 > size:
                    break  # the payload has not arrived yet
                handler = handlers.get(int(parts[1]))
                if handler is not None:
                    handler(
                        parts[0].decode(),
                        parts[2].decode() if len(parts) == 5 else "",
                        data[start : start + header_size],
                        data[start + header_size : stop],
                    )
                pos = stop + 2
            elif startswith(b"MSG ", pos):
                # MSG <subject> <sid> [reply] <bytes>
                parts = data[pos + 4 : end].split(b" ")
                start = end + 2
                stop = start + int(parts[-1])
                if stop + 2 > size:
                    break
                handler = handlers.get(int(parts[1]))
                if handler is not None:
                    reply = parts[2].decode() if len(parts) == 4 else ""
                    handler(parts[0].decode(), reply, None, data[start:stop])
                pos = stop + 2
            else:
                self._control(data[pos:end])
                pos = end + 2
        return data[pos:]

    def _control(self, line: bytes) -> None:
        if line.startswith(b"PING"):
            self._writer.write(b"PONG\r\n")
        elif line.startswith(b"PONG"):
            if self._pongs:
                pong = self._pongs.pop(0)
                if not pong.done():
                    pong.set_result(None)
        elif line.startswith(b"-ERR"):
            self.last_error = text = _error_text(line)
            # A refused publish gets no reply: fail the requests it was, at once.
            match = _VIOLATION.search(text)
            if match is not None:
                for token, subject in list(self._asked.items()):
                    waiting = self._replies.get(token)
                    if subject == match.group(1) and waiting is not None and not waiting.done():
                        waiting.set_exception(PermissionViolation(text))
        elif not (line.startswith((b"INFO", b"+OK")) or not line):
            raise ProtocolError(f"unexpected {line[:40]!r}")


def _error_text(line: bytes) -> str:
    return line[4:].decode(errors="replace").strip().strip("'")
