"""Health checks: what makes a task's readiness mean "the app answers", not "its announcer
runs" (Eureka's best-known failure: a sick app with a live heartbeat stays UP).

A check is one of three probes, as Kubernetes and Consul have them:

    http://HOST:PORT/PATH   passes on a status from 200 to 399 (redirects not followed);
    https://...             the same over TLS, the certificate not verified (Kubernetes'
                            httpGet does the same: the check asks "does it answer", not
                            "is it who it says")
    tcp:HOST:PORT           passes when a connection opens
    exec:COMMAND [ARGS]     passes when the command exits 0 (no shell; split as a shell
                            would split words); whatever it starts in its session is
                            killed when the check ends, so nothing of it outlives the check

each within ``timeout`` seconds, every ``interval`` seconds. ``Threshold`` turns results
into readiness: ``fail_after`` failures in a row make a passing task fail, ``pass_after``
passes in a row make a failing one pass (Kubernetes' failureThreshold and
successThreshold). Parsing and thresholds are pure; only ``probe`` does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import os
import shlex
import signal
import ssl
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from registry.errors import InvalidInput

__all__ = [
    "DEFAULT_FAIL_AFTER",
    "DEFAULT_INTERVAL_S",
    "DEFAULT_PASS_AFTER",
    "DEFAULT_TIMEOUT_S",
    "Check",
    "Result",
    "Threshold",
    "parse_check",
    "probe",
]

DEFAULT_INTERVAL_S = 10.0
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_FAIL_AFTER = 3
DEFAULT_PASS_AFTER = 1
_FORMS = "http://HOST[:PORT]/PATH, https://..., tcp:HOST:PORT or exec:COMMAND [ARGS]"
_MAX_RESPONSE_HEAD = 16 * 1024  # a status line and headers; the body is never read
_MAX_OUTPUT = 512  # of an exec check's output, kept for the reason


@dataclass(frozen=True, slots=True)
class Check:
    """One probe and how often to run it."""

    kind: Literal["http", "https", "tcp", "exec"]
    host: str = ""
    port: int = 0
    path: str = "/"  # http: the request target
    argv: tuple[str, ...] = ()  # exec
    interval: float = DEFAULT_INTERVAL_S
    timeout: float = DEFAULT_TIMEOUT_S
    fail_after: int = DEFAULT_FAIL_AFTER
    pass_after: int = DEFAULT_PASS_AFTER

    def __str__(self) -> str:
        """The check as ``--check`` takes it (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.kind in ("http", "https"):
            return f"{self.kind}://{host}:{self.port}{self.path}"
        if self.kind == "tcp":
            return f"tcp:{host}:{self.port}"
        return "exec:" + shlex.join(self.argv)


def parse_check(
    text: str,
    *,
    interval: float = DEFAULT_INTERVAL_S,
    timeout: float = DEFAULT_TIMEOUT_S,
    fail_after: int = DEFAULT_FAIL_AFTER,
    pass_after: int = DEFAULT_PASS_AFTER,
) -> Check:
    """A check from ``--check`` and its flags, each failure naming the value."""
    _positive("--check-interval", interval, 0.1, 3600)
    _positive("--check-timeout", timeout, 0.01, 600)
    for flag, count in (("--fail-after", fail_after), ("--pass-after", pass_after)):
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise InvalidInput(flag, str(count), "must be a whole number from 1 to 100")
    timing = {
        "interval": float(interval),
        "timeout": float(timeout),
        "fail_after": fail_after,
        "pass_after": pass_after,
    }
    kind, colon, rest = text.partition(":")
    if kind == "exec" and colon:
        try:
            argv = tuple(shlex.split(rest))
        except ValueError as exc:
            raise InvalidInput("check", text, f"the command does not parse: {exc}") from None
        if not argv:
            raise InvalidInput("check", text, "exec: needs a command")
        if any("\x00" in arg for arg in argv):
            raise InvalidInput("check", text, "the command may not hold a NUL character")
        return Check("exec", argv=argv, **timing)  # type: ignore[arg-type]
    if kind == "tcp" and colon:
        host, port = _host_port(text, rest, None)
        return Check("tcp", host=host, port=port, **timing)  # type: ignore[arg-type]
    if kind in ("http", "https") and rest.startswith("//"):
        try:
            url = urlsplit(text)
            given = url.port
        except ValueError as exc:
            raise InvalidInput("check", text, str(exc)) from None
        if not url.hostname or url.username or url.password or url.fragment or given == 0:
            raise InvalidInput("check", text, "must be http[s]://HOST[:PORT]/PATH")
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        if not target.isascii() or any(c.isspace() or not c.isprintable() for c in target):
            raise InvalidInput("check", text, "the path must be printable ASCII without spaces")
        default = 443 if kind == "https" else 80
        return Check(
            kind,  # type: ignore[arg-type]
            host=_host(text, url.hostname),
            port=default if given is None else given,
            path=target,
            **timing,  # type: ignore[arg-type]
        )
    raise InvalidInput("check", text, f"must be {_FORMS}")


def _positive(flag: str, value: float, least: float, most: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or not least <= value <= most:
        raise InvalidInput(flag, str(value), f"must be from {least:g} to {most:g} seconds")


def _host_port(text: str, rest: str, default: int | None) -> tuple[str, int]:
    host, colon, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 1 <= int(port[:6]) <= 65535:
        raise InvalidInput("check", text, f"must be {_FORMS}")
    return _host(text, host), int(port)


def _host(text: str, host: str) -> str:
    """``host`` if a probe can look it up: an IP address, or a name the resolver takes
    (a label over 63 characters, an empty one or a control character would make every
    probe fail the same way; refused once, here)."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return host
    try:
        host.encode("idna")
    except UnicodeError:
        raise InvalidInput("check", text, f"{host!r} is not a host name") from None
    if any(c.isspace() or not c.isprintable() for c in host):
        raise InvalidInput("check", text, f"{host!r} is not a host name")
    return host


@dataclass(frozen=True, slots=True)
class Result:
    """One probe's outcome, and what it saw (for the task's reason)."""

    passed: bool
    detail: str
    took: float = 0.0


async def probe(check: Check) -> Result:
    """Run the check once, within its timeout. Never raises for what the probed side does."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            passed, detail = await _PROBES[check.kind](check)
    except TimeoutError:
        passed, detail = False, f"no answer within {check.timeout:g}s"
    except OSError as exc:
        passed, detail = False, _said(exc)
    except ValueError as exc:  # a host or command no parse_check lets through
        passed, detail = False, str(exc) or type(exc).__name__
    return Result(passed, detail, time.perf_counter() - started)


def _said(exc: OSError) -> str:
    """What went wrong, in the system's words (asyncio's "Connect call failed (...)"
    says nothing of why: the errno does)."""
    if isinstance(exc, ConnectionError) and exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


async def _http(check: Check) -> tuple[bool, str]:
    import h11

    context = None
    if check.kind == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(check.host, check.port, ssl=context)
    try:
        client = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        host = f"[{check.host}]" if ":" in check.host else check.host
        request = h11.Request(
            method="GET",
            target=check.path,
            headers=[
                ("Host", f"{host}:{check.port}"),
                ("User-Agent", "skyctl-check"),
                ("Connection", "close"),
            ],
        )
        writer.write(client.send(request) + client.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(4096)
                if not data:  # (h11 would call it a protocol error, in its own terms)
                    return False, "the connection closed before a response"
                client.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                return 200 <= status < 400, f"HTTP {status}"
            if isinstance(event, h11.ConnectionClosed):
                return False, "the connection closed before a response"
            # InformationalResponse (1xx): the final response follows.
    except h11.RemoteProtocolError as exc:
        return False, f"not an HTTP response ({exc})"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _tcp(check: Check) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(check.host, check.port)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True, "connected"


async def _exec(check: Check) -> tuple[bool, str]:
    """Run the command; its exit status decides. Its output goes to a pipe of our own,
    not asyncio's: asyncio's ``Process.wait`` also waits for its pipes to close, and a
    pipe held by a child left behind (``sh -c 'x &'``), or one paused because the
    command writes faster than it is read, would hold the check past its timeout."""
    loop = asyncio.get_running_loop()
    read_end, write_end = os.pipe()
    pipe_file = os.fdopen(read_end, "rb", buffering=0)  # closed with its transport
    try:
        proc = await asyncio.create_subprocess_exec(
            *check.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=write_end,
            start_new_session=True,
        )
    except BaseException:
        pipe_file.close()
        raise
    finally:
        os.close(write_end)  # the command holds its own copy
    try:
        output = asyncio.StreamReader()
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(output), pipe_file
        )
    except BaseException:
        pipe_file.close()
        _kill_session(proc.pid)
        await proc.wait()
        raise

    async def collect() -> bytes:  # read to the end (so it never blocks), keep the start
        kept = b""
        while chunk := await output.read(65536):
            kept = (kept + chunk)[:_MAX_OUTPUT]
        return kept

    reading = asyncio.ensure_future(collect())
    try:
        code = await proc.wait()
        _kill_session(proc.pid)  # what it left behind goes too, and with it the pipe
        said = await reading
    finally:
        # Timed out, cancelled, or done: nothing the command started outlives the check.
        _kill_session(proc.pid)
        reading.cancel()
        await asyncio.wait({reading})
        pipe.close()
        await proc.wait()  # killed, so at once (it waits for the process alone)
    text = " ".join(said.decode("utf-8", "replace").split())[:160]
    status = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
    return code == 0, f"{status}: {text}" if text else status


def _kill_session(pid: int) -> None:
    """SIGKILL everything in the session ``pid`` leads (an exec check's command, started
    with ``start_new_session``: its process group is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


_PROBES = {"http": _http, "https": _http, "tcp": _tcp, "exec": _exec}


@dataclass
class Threshold:
    """Results in a row, turned into passing or not (None until decided: a task with a
    check is not ready until it passes ``pass_after`` times)."""

    fail_after: int = DEFAULT_FAIL_AFTER
    pass_after: int = DEFAULT_PASS_AFTER
    passing: bool | None = None
    streak: int = 0  # results in a row that disagree with ``passing``
    last: Result | None = None

    def record(self, result: Result) -> bool:
        """Take one result; whether ``passing`` changed."""
        self.last = result
        if result.passed == self.passing:
            self.streak = 0
            return False
        self.streak += 1
        needed = self.pass_after if result.passed else self.fail_after
        if self.passing is None and not result.passed:
            needed = 1  # nothing has passed yet: failing from the first failure
        if self.streak < needed:
            return False
        self.passing, self.streak = result.passed, 0
        return True
