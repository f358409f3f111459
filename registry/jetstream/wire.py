"""The NATS client protocol spoken directly: a ``Connection`` for one-shot processes.

Importing nats-py costs a one-shot ``skyctl`` process about a hundred milliseconds on top
of asyncio, with no lighter path inside nats-py (``nats/__init__.py`` loads the client,
JetStream, ssl, email and importlib.metadata; see the import-time table in
docs/benchmarks.md), and its per-message machinery caps a replay at the speed of its
ordered consumer.
What a short-lived client needs is small: ``INFO`` -> (TLS) -> ``CONNECT`` -> ``PING``,
``SUB``/``UNSUB``, ``PUB``/``HPUB``, and reading ``MSG``/``HMSG``. That is this module.

It never reconnects: a one-shot command that loses its connection fails and says so.

The server is not trusted to be well-formed: every size and field it sends is checked
before it is used, and anything unexpected closes the connection with ``ConnectionLost``,
so a broken or hostile server can neither make this client spin, buffer without bound,
nor crash it with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from registry.errors import NotAuthenticated, ServerError, Unreachable
from registry.jetstream.connection import (
    ConnectionLost,
    Handler,
    NoResponders,
    PayloadTooLarge,
    Reply,
    mask_url,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["WireConnection"]

T = TypeVar("T")

_CRLF = b"\r\n"
_MAX_LINE = 64 * 1024  # longest control line accepted (nats-server's own limit is 4 KiB)
_HEADER_ALLOWANCE = 64 * 1024  # what JetStream adds to a stored message's headers
_MAX_PAYLOAD_CAP = 64 * 1024 * 1024  # nats-server's default max_pending bounds max_payload
_MAX_UNSENT = _MAX_PAYLOAD_CAP  # PONGs owed to a server that sends PINGs but never reads
_DEFAULT_PORT = 4222
_HEADER_LINE = b"NATS/1.0"


class _ProtocolError(Exception):
    """The server said something this client cannot trust."""


class _HandlerFailed(Exception):
    """A subscriber's handler raised: the message it was given is lost to it."""


# -- headers ----------------------------------------------------------------------------


class _Headers(Mapping[str, str]):
    """A header block, parsed on first access.

    A replay of a million stored messages hands each one's headers to a handler that
    mostly reads only the payload; parsing them all up front would cost more than the
    rest of the read path.
    """

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._parsed: dict[str, str] | None = None

    def _fields(self) -> dict[str, str]:
        if self._parsed is None:
            self._parsed = _parse_headers(self._raw)
        return self._parsed

    def __getitem__(self, key: str) -> str:
        return self._fields()[key]

    def __contains__(self, key: object) -> bool:
        # A name whose bytes are not in the block is not a header: a rebuild asks every
        # event whether it was signed, and most answers then cost no parse. (The status
        # line's two fields have no name in the block; a non-ASCII name may have been
        # replaced when parsed.)
        if (
            self._parsed is None
            and isinstance(key, str)
            and key.isascii()
            and key not in _STATUS_FIELDS
            and key.encode() not in self._raw
        ):
            return False
        return key in self._fields()

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __repr__(self) -> str:
        return f"Headers({self._fields()!r})"


_STATUS_FIELDS = ("Status", "Description")  # what the status line gives


def _parse_headers(raw: bytes) -> dict[str, str]:
    """As nats-py has them: the status line gives ``Status`` and ``Description``."""
    lines = raw.decode(errors="replace").split("\r\n")
    status, _, description = lines[0][len(_HEADER_LINE) :].strip().partition(" ")
    fields: dict[str, str] = {}
    if status.isascii() and status.isdigit():
        fields["Status"] = status
        if description.strip():
            fields["Description"] = description.strip()
    for line in lines[1:]:
        key, colon, value = line.partition(":")
        if colon and key.strip():
            # Repeated names keep the first value, as Go's ``Header.Get`` reads them.
            fields.setdefault(key.strip(), value.strip(" \t"))
    return fields


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    lines = ["NATS/1.0"]
    for key, value in headers.items():
        if not key or any(c in key for c in ": \t\r\n") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _check_subject(subject: str) -> None:
    # A space or line break in a subject would let the caller's data become protocol.
    if not subject or " " in subject or not subject.isprintable():
        raise ValueError(f"invalid subject {subject!r}")


# -- servers ----------------------------------------------------------------------------


class _Server:
    # A plain class: a dataclass would cost this module most of its import time.
    __slots__ = ("host", "password", "port", "shown", "tls", "token", "user")

    def __init__(
        self,
        shown: str,  # the URL with its password masked: the only form that goes in a message
        tls: bool,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        token: str | None,
    ) -> None:
        self.shown, self.tls, self.host, self.port = shown, tls, host, port
        self.user, self.password, self.token = user, password, token


class _Failed(Exception):
    """One server's failure, ranked: the most informative of several is the one raised."""

    def __init__(self, rank: int, error: ServerError) -> None:
        super().__init__(str(error))
        self.rank = rank
        self.error = error


_NOT_REACHED, _NO_ANSWER, _REACHED, _REFUSED_US = range(4)


def _parse_server(text: str) -> _Server:
    shown = mask_url(text)

    def bad(reason: str) -> NoReturn:
        raise _Failed(_NOT_REACHED, Unreachable(shown, f"bad URL: {reason}"))

    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "nats", text
    scheme = scheme.lower()
    if scheme not in ("nats", "tls"):
        bad(f"unsupported scheme {scheme}:// (this client speaks nats:// and tls://)")
    userinfo, at, hostport = rest.rpartition("@")
    hostport = hostport.rstrip("/")
    if hostport.startswith("["):  # [IPv6]:port
        host, bracket, tail = hostport[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            bad("malformed IPv6 address")
        port_text = tail[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        bad("no host")
    if port_text and not (
        port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536
    ):
        bad(f"port {port_text!r} is not a port number")
    user = password = token = None
    if at:
        name, colon, secret = userinfo.partition(":")
        if colon:
            user, password = _unquote(name), _unquote(secret)
        else:
            token = _unquote(name)
    port = int(port_text or _DEFAULT_PORT)
    return _Server(shown, scheme == "tls", host, port, user, password, token)


def _unquote(text: str) -> str:
    """Percent-decoded, as the nats CLI (Go's ``url.Parse``) reads user info."""
    if "%" not in text:
        return text
    from urllib.parse import unquote  # only for the rare URL that needs it

    return unquote(text)


def _read_info(line: bytes) -> dict[str, Any]:
    if not line.startswith(b"INFO "):
        raise _ProtocolError(f"expected INFO, got {line[:40]!r}")
    try:
        info = json.loads(line[5:])
    except (ValueError, RecursionError):
        raise _ProtocolError("INFO is not JSON") from None
    if not isinstance(info, dict):
        raise _ProtocolError("INFO is not a JSON object")
    max_payload = info.get("max_payload", 1024 * 1024)
    if type(max_payload) is not int or max_payload <= 0:
        raise _ProtocolError(f"INFO max_payload {max_payload!r} is not a positive integer")
    return info


def _os_reason(exc: OSError) -> str:
    # With several addresses for a name (localhost: ::1 and 127.0.0.1) asyncio merges
    # the refusals into one plain OSError that keeps only their text.
    if isinstance(exc, ConnectionRefusedError) or f"[Errno {errno.ECONNREFUSED}]" in str(exc):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    return exc.strerror or str(exc) or type(exc).__name__


# -- the connection ---------------------------------------------------------------------


class _Subscription:
    __slots__ = ("_connection", "_sid")

    def __init__(self, connection: WireConnection, sid: bytes) -> None:
        self._connection = connection
        self._sid = sid

    async def unsubscribe(self) -> None:
        self._connection._unsubscribe(self._sid)


def _ignore() -> None:
    """Unregisters a reconnect listener: there is nothing to unregister."""


class WireConnection:
    """One connection to one server of the list it was given; requests share one inbox."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: dict[str, Any],
        url: str,
        server: str,
        inbox_prefix: str = "_INBOX",
    ) -> None:
        self.info = info  # the server's INFO, for what it says about itself
        self._url = url
        self._server = server
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._max_message = self._message_limit(info)
        self._handlers: dict[bytes, Handler] = {}
        self._next_sid = 0
        self._prefix = f"{inbox_prefix}.{os.urandom(12).hex()}"
        self._next_inbox = 0
        self._reply_sid: bytes | None = None
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._next_token = 0
        self._pongs: deque[asyncio.Future[None]] = deque()
        self._error_listeners: list[Callable[[str], None]] = []
        self._server_error = ""  # the last fatal -ERR: why the server is about to hang up
        self._lost: str | None = None
        self._lost_cause: BaseException | None = None
        self._task = self._loop.create_task(self._read_loop())

    # -- connecting --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls_ca: Path | None = None,
        timeout: float = 2.0,
        name: str = "skyctl",
        inbox_prefix: str = "_INBOX",
    ) -> WireConnection:
        """The first server of ``url`` (comma-separated) that connects and authenticates.

        Explicit credentials replace any in the URL. Each server gets ``timeout`` seconds
        for all of it. If none connects, the failure that says most is raised: a refusal
        of the credentials over a TLS problem over a silent server over a closed port.
        """
        failures: list[_Failed] = []
        for text in (part.strip() for part in url.split(",")):
            if not text:
                continue
            try:
                server = _parse_server(text)
                if user is not None or password is not None or token is not None:
                    server.user, server.password, server.token = user, password, token
                return await cls._open(server, mask_url(url), tls_ca, timeout, name, inbox_prefix)
            except _Failed as failed:
                failures.append(failed)
        if not failures:
            raise Unreachable(mask_url(url) or '""', "no server URL given")
        best = max(failures, key=lambda failed: failed.rank)
        if len(failures) > 1 and best.rank <= _NO_ANSWER:
            # Nothing answered anywhere: the list as given is what could not be reached.
            raise Unreachable(mask_url(url), getattr(best.error, "reason", "")) from None
        raise best.error from None

    @classmethod
    async def _open(
        cls,
        server: _Server,
        url: str,
        tls_ca: Path | None,
        timeout: float,
        name: str,
        inbox_prefix: str,
    ) -> WireConnection:
        def fail(rank: int, reason: str) -> _Failed:
            return _Failed(rank, Unreachable(server.shown, reason))

        stage = "no answer"
        deadline = asyncio.get_running_loop().time() + timeout  # for all of this server
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(
                    server.host, server.port, limit=_MAX_LINE
                )
        except TimeoutError:
            raise fail(_NO_ANSWER, stage) from None
        except OSError as exc:
            raise fail(_NOT_REACHED, _os_reason(exc)) from None
        try:
            async with asyncio.timeout_at(deadline):
                line = await reader.readline()
                if not line.endswith(_CRLF):
                    raise fail(_REACHED, "the server closed the connection")
                info = _read_info(line)
                tls = server.tls or tls_ca is not None or info.get("tls_required") is True
                if tls:
                    stage = "no answer to the TLS handshake"
                    await cls._start_tls(writer, server, info, tls_ca)
                stage = "no answer to CONNECT"
                writer.write(b"CONNECT %b\r\nPING\r\n" % cls._options(server, tls, name))
                while (line := await reader.readline()) != b"PONG\r\n":
                    cls._handshake_line(line, server, writer)
        except _Failed:
            writer.transport.abort()
            raise
        except TimeoutError:
            writer.transport.abort()
            raise fail(_NO_ANSWER, stage) from None
        except _ProtocolError as exc:
            writer.transport.abort()
            raise fail(_REACHED, f"protocol error: {exc}") from None
        except ValueError:  # a line past the reader's limit
            writer.transport.abort()
            raise fail(_REACHED, "protocol error: control line longer than 64 KiB") from None
        except OSError as exc:
            writer.transport.abort()
            raise fail(_REACHED, f"the connection failed: {_os_reason(exc)}") from None
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer, info, url, server.shown, inbox_prefix)

    @staticmethod
    async def _start_tls(
        writer: asyncio.StreamWriter, server: _Server, info: dict[str, Any], tls_ca: Path | None
    ) -> None:
        """Upgrade after INFO, as nats-server expects; never fall back to plaintext."""
        import ssl  # only a TLS connection pays for setting it up

        def fail(reason: str) -> _Failed:
            return _Failed(_REACHED, Unreachable(server.shown, reason))

        if info.get("tls_required") is not True and info.get("tls_available") is not True:
            raise fail("the server does not offer TLS")
        try:
            context = ssl.create_default_context(cafile=tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise fail(f"cannot use the CA file {tls_ca}: {exc.strerror or exc}") from None
        try:
            await writer.start_tls(context, server_hostname=server.host)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in (62, 64):  # host name or IP address mismatch
                raise fail(
                    f"TLS certificate is not for {server.host} ({exc.verify_message})"
                ) from None
            raise fail(
                f"TLS certificate not trusted ({exc.verify_message}; give its CA with --tlsca)"
            ) from None
        except ssl.SSLError as exc:
            raise fail(f"TLS handshake failed ({exc.reason or exc})") from None

    @staticmethod
    def _options(server: _Server, tls: bool, name: str) -> bytes:
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "tls_required": tls,
            "lang": "python-skyflow-wire",
            "version": "2",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
            "name": name,
        }
        if server.user is not None:
            options.update(user=server.user, **{"pass": server.password or ""})
        elif server.token is not None:
            options["auth_token"] = server.token
        return json.dumps(options).encode()

    @staticmethod
    def _handshake_line(line: bytes, server: _Server, writer: asyncio.StreamWriter) -> None:
        if not line.endswith(_CRLF):
            raise _Failed(_REACHED, Unreachable(server.shown, "the server closed the connection"))
        if line.startswith(b"-ERR"):
            text = _error_text(line)
            if "authorization violation" in text.lower():
                raise _Failed(
                    _REFUSED_US, NotAuthenticated(server.shown, "authorization violation")
                )
            raise _Failed(_REACHED, Unreachable(server.shown, f"the server refused us: {text}"))
        if line == b"PING\r\n":
            writer.write(b"PONG\r\n")
        elif line.startswith(b"INFO "):
            _read_info(line)
        elif line != b"+OK\r\n":
            raise _ProtocolError(f"unexpected {line[:40]!r}")

    @staticmethod
    def _message_limit(info: Mapping[str, Any]) -> int:
        # A server may announce any max_payload; past nats-server's own default bound it
        # would only let a hostile server make this client buffer that much.
        max_payload: int = info.get("max_payload", 1024 * 1024)
        return min(max_payload, _MAX_PAYLOAD_CAP) + _HEADER_ALLOWANCE

    # -- the Connection protocol -------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def is_closed(self) -> bool:
        return self._lost is not None

    @property
    def is_connected(self) -> bool:
        return self._lost is None  # it never reconnects: up until lost for good

    @property
    def reconnects(self) -> bool:
        return False

    @property
    def auth_required(self) -> bool:
        return self.info.get("auth_required") is True

    def new_inbox(self) -> str:
        self._next_inbox += 1
        return f"{self._prefix}.i{self._next_inbox}"

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._check_open()
        _check_subject(subject)
        target = subject
        if reply:
            _check_subject(reply)
            target = f"{subject} {reply}"
        if headers:
            block = _encode_headers(headers)
            total = len(block) + len(payload)
            self._check_size(total)
            head = f"HPUB {target} {len(block)} {total}\r\n".encode()
            self._writer.write(b"".join((head, block, payload, _CRLF)))
        else:
            self._check_size(len(payload))
            self._writer.write(
                b"".join((f"PUB {target} {len(payload)}\r\n".encode(), payload, _CRLF))
            )
        await self._drain()

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> Reply:
        self._check_open()
        if self._reply_sid is None:
            self._reply_sid = self._subscribe(f"{self._prefix}.r.*", self._on_reply)
        self._next_token += 1
        token = str(self._next_token)
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._replies[token] = future
        try:
            await self.publish(subject, payload, reply=f"{self._prefix}.r.{token}", headers=headers)
            reply = await self._wait(future, timeout)
        finally:
            self._replies.pop(token, None)
        if reply.status == "503":
            raise NoResponders(subject)
        return reply

    async def subscribe(self, subject: str, handler: Handler) -> _Subscription:
        self._check_open()
        _check_subject(subject)
        return _Subscription(self, self._subscribe(subject, handler))

    async def flush(self, timeout: float) -> None:
        self._check_open()
        future: asyncio.Future[None] = self._loop.create_future()
        self._pongs.append(future)
        self._writer.write(b"PING\r\n")
        await self._wait(future, timeout)

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        return _ignore  # it never reconnects

    def on_error(self, listener: Callable[[str], None]) -> None:
        self._error_listeners.append(listener)

    async def close(self) -> None:
        if self._lost is None:
            # What was published before close() should still reach the server.
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._writer.drain()
            self._lose("the connection was closed")
        self._task.cancel()
        await asyncio.wait([self._task])  # unlike awaiting it, keeps our own cancellation
        try:
            async with asyncio.timeout(1.0):  # a TLS peer may never answer close_notify
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            self._writer.transport.abort()

    # -- internals ---------------------------------------------------------------------

    def _subscribe(self, subject: str, handler: Handler) -> bytes:
        self._next_sid += 1
        sid = str(self._next_sid).encode()
        self._handlers[sid] = handler
        self._writer.write(b"SUB %b %b\r\n" % (subject.encode(), sid))
        return sid

    def _unsubscribe(self, sid: bytes) -> None:
        if self._handlers.pop(sid, None) is not None and self._lost is None:
            self._writer.write(b"UNSUB %b\r\n" % sid)

    def _check_open(self) -> None:
        if self._lost is not None:
            raise self._lost_error()

    def _check_size(self, size: int) -> None:
        limit = self.info.get("max_payload", 1024 * 1024)
        if size > limit:
            raise PayloadTooLarge(size, limit)

    def _lost_error(self) -> ConnectionLost:
        error = ConnectionLost(self._lost or "connection lost")
        error.__cause__ = self._lost_cause
        return error

    async def _drain(self) -> None:
        """Wait only while the socket's send buffer is over its high-water mark."""
        try:
            await self._writer.drain()
        except OSError as exc:
            self._lose(f"the connection to {self._server} failed: {_os_reason(exc)}")
            raise self._lost_error() from None

    async def _wait(self, future: asyncio.Future[T], timeout: float) -> T:
        timer = self._loop.call_later(timeout, _time_out, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _on_reply(
        self, subject: str, _reply: str, headers: Mapping[str, str] | None, data: bytes
    ) -> None:
        future = self._replies.get(subject.rpartition(".")[2])
        if future is not None and not future.done():
            future.set_result(Reply(subject, {} if headers is None else headers, data))

    def _lose(self, reason: str, cause: BaseException | None = None) -> None:
        """Closed for good: every waiter learns why at once, and nothing is sent again."""
        if self._lost is not None:
            return
        self._lost = reason
        self._lost_cause = cause
        waiting: list[asyncio.Future[Any]] = [*self._replies.values(), *self._pongs]
        self._replies.clear()
        self._pongs.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(self._lost_error())
        self._writer.close()

    # -- receiving ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = f"the connection to {self._server} was closed"
        cause: BaseException | None = None
        read = self._reader.read
        chunks: list[bytes] = []  # received, not yet dispatched
        have = 0
        need = 0  # what the incomplete message at their front needs in all
        try:
            while chunk := await read(1 << 18):
                chunks.append(chunk)
                have += len(chunk)
                if have < need:
                    continue  # joined once it is whole: a big message costs no quadratic copy
                rest, need = self._parse(b"".join(chunks) if len(chunks) > 1 else chunk)
                chunks = [rest] if rest else []
                have = len(rest)
            reason = f"{self._server} closed the connection"
            if self._server_error:
                reason += f" ({self._server_error})"
        except _ProtocolError as exc:
            reason = f"protocol error from {self._server}: {exc}"
        except UnicodeDecodeError as exc:
            reason = f"protocol error from {self._server}: not UTF-8 ({exc.reason})"
        except _HandlerFailed as exc:
            reason, cause = str(exc), exc.__cause__
        except OSError as exc:
            reason = f"the connection to {self._server} failed: {_os_reason(exc)}"
        finally:
            self._lose(reason, cause)

    def _parse(self, data: bytes) -> tuple[bytes, int]:
        """Dispatch every complete operation in ``data``; return the incomplete rest and
        the length it must reach before another pass can dispatch anything (0: unknown).

        The hot path of a replay: one pass, no copies but the payloads, and every size
        checked against what the server announced before anything waits for it.
        """
        pos = 0
        size = len(data)
        find = data.find
        startswith = data.startswith
        handlers = self._handlers
        limit = self._max_message
        while pos < size:
            end = find(_CRLF, pos, pos + _MAX_LINE + 2)
            if end < 0:
                if size - pos > _MAX_LINE:
                    raise _ProtocolError("control line longer than 64 KiB")
                break
            if startswith(b"HMSG ", pos):
                # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                args = data[pos + 5 : end].split()
                if not 4 <= len(args) <= 5:
                    raise _ProtocolError(f"malformed {data[pos:end][:60]!r}")
                header_size = _size(args[-2], limit)
                total = _size(args[-1], limit)
                if header_size > total:
                    raise _ProtocolError(f"header size {header_size} > total size {total}")
                start = end + 2
                stop = start + total
                if stop + 2 > size:
                    return data[pos:], stop + 2 - pos  # the rest has not arrived yet
                if not startswith(_HEADER_LINE, start) or not startswith(_CRLF, stop):
                    raise _ProtocolError(f"malformed message after {data[pos:end][:60]!r}")
                handler = handlers.get(args[1])
                if handler is not None:
                    _deliver(
                        handler,
                        args[0].decode(),
                        args[2].decode() if len(args) == 5 else "",
                        _Headers(data[start : start + header_size]),
                        data[start + header_size : stop],
                    )
                elif not args[1].isdigit():
                    raise _ProtocolError(f"malformed sid {args[1][:20]!r}")
                pos = stop + 2
            elif startswith(b"MSG ", pos):
                # MSG <subject> <sid> [reply] <bytes>
                args = data[pos + 4 : end].split()
                if not 3 <= len(args) <= 4:
                    raise _ProtocolError(f"malformed {data[pos:end][:60]!r}")
                start = end + 2
                stop = start + _size(args[-1], limit)
                if stop + 2 > size:
                    return data[pos:], stop + 2 - pos
                if not startswith(_CRLF, stop):
                    raise _ProtocolError(f"malformed message after {data[pos:end][:60]!r}")
                handler = handlers.get(args[1])
                if handler is not None:
                    reply = args[2].decode() if len(args) == 4 else ""
                    _deliver(handler, args[0].decode(), reply, None, data[start:stop])
                elif not args[1].isdigit():
                    raise _ProtocolError(f"malformed sid {args[1][:20]!r}")
                pos = stop + 2
            else:
                self._control(data[pos:end])
                pos = end + 2
        return data[pos:], 0

    def _control(self, line: bytes) -> None:
        if line == b"PING":
            if self._writer.transport.get_write_buffer_size() > _MAX_UNSENT:
                raise _ProtocolError("PINGs while it reads nothing")
            self._writer.write(b"PONG\r\n")
        elif line == b"PONG":
            if self._pongs:
                pong = self._pongs.popleft()
                if not pong.done():
                    pong.set_result(None)
        elif line.startswith(b"-ERR"):
            text = _error_text(line)
            if not text.lower().startswith("permissions violation"):
                self._server_error = text  # the others are followed by a hang-up
            for listener in self._error_listeners:
                try:
                    listener(text)
                except Exception as exc:
                    raise _HandlerFailed(f"an error listener raised {exc!r}") from exc
        elif line.startswith(b"INFO "):
            info = _read_info(line)
            self.info = info
            self._max_message = self._message_limit(info)
        elif line != b"+OK":
            raise _ProtocolError(f"unknown operation {line[:40]!r}")


def _size(field: bytes, limit: int) -> int:
    """A size field, at most ``limit``; ``int()`` alone would take ``-1``, ``+1``, ``1_0``."""
    if not field.isdigit() or len(field) > 10 or int(field) > limit:
        raise _ProtocolError(f"size {field[:20]!r} is not a number up to {limit}")
    return int(field)


def _deliver(
    handler: Handler, subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes
) -> None:
    try:
        handler(subject, reply, headers, data)
    except Exception as exc:
        raise _HandlerFailed(f"the handler of a message on {subject!r} raised {exc!r}") from exc


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _error_text(line: bytes) -> str:
    """The text of an ``-ERR``, safe to print: a server's words end up on a terminal."""
    text = line[4:200].decode(errors="replace").strip().strip("'")
    return "".join(c if c.isprintable() else "?" for c in text)
