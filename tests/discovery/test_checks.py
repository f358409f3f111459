"""Health checks without a server: every ``--check`` form and every refusal, the
thresholds that turn results into readiness, the verdict of everything that has a say, and
``probe`` against real listeners on this machine (HTTP answering 200, 302, 500 and
garbage, a closed port, a listener that never answers, commands that pass, fail, hang or
print without end)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.control import ReadinessAction
from events.task import Task
from registry.discovery.checks import (
    DEFAULT_FAIL_AFTER,
    DEFAULT_INTERVAL_S,
    DEFAULT_PASS_AFTER,
    DEFAULT_TIMEOUT_S,
    Check,
    Result,
    Threshold,
    parse_check,
    probe,
)
from registry.discovery.readiness import Readiness, Verdict
from registry.errors import InvalidInput

HOST = "127.0.0.1"
PASS, FAIL = Result(True, "HTTP 200"), Result(False, "HTTP 503")

# -- parse_check: every form -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.0.0.1/healthz", Check("http", "127.0.0.1", 80, "/healthz")),
        ("http://127.0.0.1:8080/healthz", Check("http", "127.0.0.1", 8080, "/healthz")),
        ("http://web.local", Check("http", "web.local", 80, "/")),
        ("https://example.com", Check("https", "example.com", 443, "/")),
        ("https://example.com:8443/ready", Check("https", "example.com", 8443, "/ready")),
        ("http://h:81/a/b?full=1&x=%20y", Check("http", "h", 81, "/a/b?full=1&x=%20y")),
        ("http://h/?probe", Check("http", "h", 80, "/?probe")),
        ("http://[::1]:9000/x", Check("http", "::1", 9000, "/x")),
        ("tcp:127.0.0.1:5432", Check("tcp", "127.0.0.1", 5432)),
        ("tcp:db.local:5432", Check("tcp", "db.local", 5432)),
        ("tcp:[::1]:80", Check("tcp", "::1", 80)),
        ("exec:true", Check("exec", argv=("true",))),
        ("exec:pg_isready -h 127.0.0.1", Check("exec", argv=("pg_isready", "-h", "127.0.0.1"))),
        ("exec:sh -c 'exit 1'", Check("exec", argv=("sh", "-c", "exit 1"))),
        (
            'exec:/bin/check --name "a b" it\\\'s',
            Check("exec", argv=("/bin/check", "--name", "a b", "it's")),
        ),
    ],
)
def test_every_form_parses_to_its_check(text: str, expected: Check) -> None:
    check = parse_check(text)
    assert check == expected
    assert (check.interval, check.timeout) == (DEFAULT_INTERVAL_S, DEFAULT_TIMEOUT_S)
    assert (check.fail_after, check.pass_after) == (DEFAULT_FAIL_AFTER, DEFAULT_PASS_AFTER)
    assert parse_check(str(check)) == check  # printed as --check takes it


def test_the_flags_reach_the_check() -> None:
    check = parse_check("tcp:h:1", interval=0.1, timeout=600, fail_after=100, pass_after=1)
    assert (check.interval, check.timeout, check.fail_after, check.pass_after) == (
        0.1,
        600.0,
        100,
        1,
    )
    assert isinstance(check.timeout, float)
    low = parse_check("exec:true", interval=3600, timeout=0.01, fail_after=1, pass_after=100)
    assert (low.interval, low.timeout, low.fail_after, low.pass_after) == (3600, 0.01, 1, 100)


def test_defaults_are_kubernetes_like() -> None:
    # (Kubernetes: periodSeconds 10, timeoutSeconds 1, failureThreshold 3, successThreshold 1.)
    assert (DEFAULT_INTERVAL_S, DEFAULT_FAIL_AFTER, DEFAULT_PASS_AFTER) == (10.0, 3, 1)


ARGS = st.lists(st.text(st.characters(exclude_characters="\x00"), max_size=12), min_size=1)


@given(ARGS)
def test_any_command_quoted_as_a_shell_would_parses_back(argv: list[str]) -> None:
    check = parse_check("exec:" + shlex.join(argv))
    assert check.argv == tuple(argv)
    assert parse_check(str(check)) == check


@given(
    st.ip_addresses().map(str).filter(lambda a: "%" not in a),
    st.integers(1, 65535),
    st.sampled_from(["tcp", "http", "https"]),
)
def test_any_address_and_port_parse_back(address: str, port: int, kind: str) -> None:
    host = f"[{address}]" if ":" in address else address
    text = f"tcp:{host}:{port}" if kind == "tcp" else f"{kind}://{host}:{port}/"
    check = parse_check(text)
    assert (check.kind, check.host, check.port) == (kind, address, port)
    assert parse_check(str(check)) == check


# -- parse_check: every refusal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ftp://h/x", "must be http://HOST[:PORT]/PATH"),
        ("HTTP://h/", "must be http://"),
        ("h:80", "must be http://"),
        ("http:h:80", "must be http://"),
        ("", "must be http://"),
        ("tcp:h", "must be"),  # no port
        ("tcp:h:", "must be"),
        ("tcp::80", "must be"),  # no host
        ("tcp:h:0", "must be"),
        ("tcp:h:65536", "must be"),
        ("tcp:h:8o", "must be"),
        ("http://h:0/", "must be http[s]://HOST[:PORT]/PATH"),
        ("http://h:65536/", "out of range"),
        ("http://h:8o/", "Port could not be cast"),
        ("http:///path", "must be http[s]://"),  # no host
        ("http://user:secret@h/", "must be http[s]://HOST[:PORT]/PATH"),
        ("https://user@h/", "must be http[s]://HOST[:PORT]/PATH"),
        ("http://h/#top", "must be http[s]://HOST[:PORT]/PATH"),
        ("http://h/a b", "printable ASCII without spaces"),
        ("http://h/caf\u00e9", "printable ASCII without spaces"),
        ("http://[::1/", "Invalid IPv6 URL"),
        ("tcp:a..b:80", "is not a host name"),
        ("tcp:" + "a" * 64 + ".local:80", "is not a host name"),  # a label over 63
        ("tcp:h b:80", "is not a host name"),
        ("tcp:h\x1b:80", "is not a host name"),
        ("exec:", "exec: needs a command"),
        ("exec:   ", "exec: needs a command"),
        ("exec:echo 'unclosed", "the command does not parse: No closing quotation"),
        ('exec:echo "unclosed', "the command does not parse"),
        ("exec:check a\x00b", "NUL"),
    ],
)
def test_a_bad_check_is_one_invalid_input_naming_it(text: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_check(text)
    assert refused.value.what == "check" and refused.value.value == text
    assert why in refused.value.reason, refused.value.reason
    assert str(refused.value).startswith(f'invalid check "{text}": ')


@pytest.mark.parametrize(
    ("flags", "flag", "shown"),
    [
        ({"interval": 0}, "--check-interval", "0"),
        ({"interval": 0.09}, "--check-interval", "0.09"),
        ({"interval": 3601}, "--check-interval", "3601"),
        ({"interval": float("nan")}, "--check-interval", "nan"),
        ({"interval": float("inf")}, "--check-interval", "inf"),
        ({"timeout": 0}, "--check-timeout", "0"),
        ({"timeout": 601}, "--check-timeout", "601"),
        ({"timeout": -1}, "--check-timeout", "-1"),
        ({"fail_after": 0}, "--fail-after", "0"),
        ({"fail_after": 101}, "--fail-after", "101"),
        ({"fail_after": 2.5}, "--fail-after", "2.5"),
        ({"fail_after": True}, "--fail-after", "True"),
        ({"pass_after": 0}, "--pass-after", "0"),
        ({"pass_after": 101}, "--pass-after", "101"),
    ],
)
def test_bad_timing_is_one_invalid_input_naming_the_flag_and_value(
    flags: dict[str, Any], flag: str, shown: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_check("tcp:h:1", **flags)
    assert refused.value.what == flag and refused.value.value == shown
    assert str(refused.value).startswith(f'invalid {flag} "{shown}": must be ')
    assert "\n" not in str(refused.value)


# -- Threshold --------------------------------------------------------------------------


def feed(threshold: Threshold, results: str) -> list[bool]:
    """Record ``results`` ("p" passed, "f" failed); whether each changed ``passing``."""
    return [threshold.record(PASS if r == "p" else FAIL) for r in results]


def test_nothing_is_decided_before_the_first_result() -> None:
    threshold = Threshold(3, 2)
    assert threshold.passing is None and threshold.last is None


def test_passing_takes_pass_after_passes_in_a_row() -> None:
    threshold = Threshold(fail_after=3, pass_after=2)
    assert feed(threshold, "p") == [False] and threshold.passing is None
    assert feed(threshold, "p") == [True] and threshold.passing is True
    assert threshold.last is PASS


def test_a_first_failure_fails_at_once_when_nothing_passed_yet() -> None:
    threshold = Threshold(fail_after=3, pass_after=2)
    assert feed(threshold, "f") == [True] and threshold.passing is False
    # ...even after passes too few to decide:
    threshold = Threshold(fail_after=3, pass_after=3)
    assert feed(threshold, "ppf") == [False, False, True] and threshold.passing is False


def test_failing_takes_fail_after_failures_in_a_row() -> None:
    threshold = Threshold(fail_after=3, pass_after=1)
    assert feed(threshold, "pff") == [True, False, False] and threshold.passing is True
    assert feed(threshold, "f") == [True] and threshold.passing is False
    assert threshold.last is FAIL


def test_a_streak_is_reset_by_one_result_that_disagrees() -> None:
    threshold = Threshold(fail_after=3, pass_after=3)
    feed(threshold, "ppp")
    assert feed(threshold, "ffpffpff") == [False] * 8 and threshold.passing is True
    assert feed(threshold, "f") == [True] and threshold.passing is False
    assert feed(threshold, "ppfppfpp") == [False] * 8 and threshold.passing is False
    assert feed(threshold, "p") == [True] and threshold.passing is True


def test_agreeing_results_change_nothing() -> None:
    threshold = Threshold(fail_after=1, pass_after=1)
    assert feed(threshold, "pppp") == [True, False, False, False]
    assert feed(threshold, "ffff") == [True, False, False, False]


@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.lists(st.booleans(), max_size=60),
)
def test_a_threshold_flips_exactly_when_its_streak_is_reached(
    fail_after: int, pass_after: int, results: list[bool]
) -> None:
    threshold = Threshold(fail_after, pass_after)
    seen: list[bool] = []
    for passed in results:
        before = threshold.passing
        changed = threshold.record(Result(passed, "x"))
        seen.append(passed)
        assert changed == (threshold.passing != before)
        last = seen[-(pass_after if passed else fail_after) :]
        streak = len(last) == (pass_after if passed else fail_after) and all(
            r == passed for r in last
        )
        if changed:
            assert threshold.passing == passed
            # Never before the streak is reached (a first failure is a streak of its own).
            assert streak or (before is None and not passed)
        # ...and always once it is.
        if streak or (not passed and not any(seen[:-1])):
            assert threshold.passing == passed


# -- Readiness --------------------------------------------------------------------------


def checked(results: str, fail_after: int = 1, pass_after: int = 1) -> Threshold:
    threshold = Threshold(fail_after, pass_after)
    feed(threshold, results)
    return threshold


def test_a_task_without_a_check_is_ready_unless_announced_not_ready() -> None:
    assert Readiness.announced(True).verdict() == Verdict(True)
    assert Readiness.announced(False).verdict() == Verdict(False, False, "announced not ready")
    assert not Readiness.announced(True).checked(FAIL)  # no check: results say nothing


def test_a_check_keeps_the_task_out_until_it_passes_and_while_it_fails() -> None:
    readiness = Readiness.announced(True, Threshold(2, 1), "tcp:h:1")
    assert readiness.verdict() == Verdict(False, False, "check tcp:h:1: not passed yet")
    assert readiness.checked(PASS) and readiness.verdict() == Verdict(True)
    assert not readiness.checked(FAIL)  # one of two
    assert readiness.checked(FAIL)
    assert readiness.verdict() == Verdict(False, False, "check tcp:h:1 failing: HTTP 503")
    assert not readiness.checked(FAIL)  # still failing, same reason
    assert readiness.checked(PASS) and readiness.verdict() == Verdict(True)


def test_not_passed_yet_while_the_passes_are_too_few() -> None:
    readiness = Readiness.announced(True, Threshold(3, 3), "exec:x")
    assert not readiness.checked(PASS)
    assert readiness.verdict().reason == "check exec:x: not passed yet"
    # Not ready either way: nothing to announce, though the reason now says what it saw.
    assert not readiness.checked(FAIL)
    assert readiness.verdict().reason == "check exec:x failing: HTTP 503"


def test_drain_beats_hold_beats_check() -> None:
    readiness = Readiness.announced(True, checked("f"), "tcp:h:1")
    readiness.request(ReadinessAction.NOT_READY, "investigating", "bob@ops")
    assert readiness.verdict() == Verdict(False, False, "set not ready by bob@ops: investigating")
    readiness.request(ReadinessAction.DRAIN, "deploy v2", "alice@ops")
    assert readiness.verdict() == Verdict(False, True, "drained by alice@ops: deploy v2")
    readiness.checked(PASS)  # a passing check does not end a drain
    assert readiness.verdict().draining
    readiness.request(ReadinessAction.NOT_READY, None, None)  # nor does holding it
    assert readiness.verdict() == Verdict(False, True, "drained by alice@ops: deploy v2")
    assert readiness.held == "set not ready"


def test_ready_clears_drain_and_hold_but_not_a_failing_check() -> None:
    readiness = Readiness.announced(False, checked("f"), "tcp:h:1")
    readiness.request(ReadinessAction.DRAIN, None, None)
    assert readiness.verdict() == Verdict(False, True, "drained")
    readiness.request(ReadinessAction.READY, "done", "carol")
    assert (readiness.drained, readiness.held) == (None, None)
    assert readiness.verdict() == Verdict(False, False, "check tcp:h:1 failing: HTTP 503")
    readiness.checked(PASS)
    assert readiness.verdict() == Verdict(True)


def test_a_check_changes_the_task_only_when_its_readiness_turns() -> None:
    readiness = Readiness.announced(True, Threshold(1, 1), "tcp:h:1")
    assert not readiness.checked(FAIL)  # "not passed yet" -> "failing": not ready either way
    assert readiness.checked(PASS)
    assert readiness.checked(Result(False, "HTTP 503"))
    assert not readiness.checked(Result(False, "refused"))  # still failing: no new heartbeat
    readiness.request(ReadinessAction.DRAIN, None, None)
    assert not readiness.checked(PASS)  # hidden behind the drain
    assert not readiness.checked(Result(False, "refused"))


def valid_reason(reason: str | None) -> None:
    """``reason`` is what a heartbeat may carry (the Task model's own rules)."""
    Task(namespace="shop", name="t", address="10.0.0.1", ready=False, reason=reason)


def test_reasons_are_clipped_to_200_printable_characters() -> None:
    readiness = Readiness.announced(True)
    readiness.request(ReadinessAction.NOT_READY, "x" * 500, "bob")
    held = readiness.verdict().reason
    assert held is not None and len(held) == 200 and held.endswith("x...")
    assert held.startswith("set not ready by bob: xxx")
    valid_reason(held)
    readiness.request(ReadinessAction.DRAIN, "\x1b[31mred\x1b[0m\nnext\tline\x7f", "eve\r")
    drained = readiness.verdict().reason
    assert drained == "drained by eve :  [31mred [0m next line "
    valid_reason(drained)


def test_a_check_detail_with_control_characters_is_cleaned() -> None:
    readiness = Readiness.announced(True, Threshold(1, 1), "exec:x")
    readiness.checked(Result(False, "exit 1: \x1b]0;pwned\x07" + "y" * 400))
    reason = readiness.verdict().reason
    assert reason is not None and len(reason) == 200
    assert reason.startswith("check exec:x failing: exit 1:  ]0;pwned ")
    valid_reason(reason)


@given(
    st.sampled_from(list(ReadinessAction)),
    st.none() | st.text(max_size=300),
    st.none() | st.text(max_size=80),
    st.text(max_size=300),
)
def test_every_reason_is_one_a_heartbeat_carries(
    action: ReadinessAction, reason: str | None, by: str | None, detail: str
) -> None:
    readiness = Readiness.announced(True, Threshold(1, 1), "exec:x")
    readiness.checked(Result(False, detail))
    readiness.request(action, reason, by)
    verdict = readiness.verdict()
    assert verdict.ready == (verdict.reason is None)
    assert not (verdict.ready and verdict.draining)
    valid_reason(verdict.reason)


# -- probe against real listeners -------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def listening(handler: Handler, host: str = HOST, **kwargs: Any) -> AsyncIterator[int]:
    """A local TCP server running ``handler`` per connection; its port. Every handler
    still running is cancelled and awaited on the way out."""
    running: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        assert current is not None
        running.add(current)
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await handler(reader, writer)
        finally:
            writer.close()
            running.discard(current)

    server = await asyncio.start_server(serve, host, 0, **kwargs)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for job in list(running):
            job.cancel()
        if running:
            await asyncio.wait(running)
        await server.wait_closed()


ANSWERS = {  # by path
    "/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/moved": b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n\r\n",
    "/error": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    "/unavailable": b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    "/garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "/closed": b"",
    "/endless-head": b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 40_000 + b"\r\n",
}


class Http:
    """An HTTP/1.1 server answering by path (``ANSWERS``); it keeps what it was asked."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        path = head.split(b" ")[1].decode().partition("?")[0]
        writer.write(ANSWERS[path])
        await writer.drain()


@pytest.fixture
async def http() -> AsyncIterator[tuple[Http, int]]:
    server = Http()
    async with listening(server) as port:
        yield server, port


async def speaks_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the prober gives up and closes


def within(result: Result, check: Check, slack: float = 3.0) -> None:
    """The probe ended within the check's timeout (and a generous allowance)."""
    assert result.took < check.timeout + slack, result


@pytest.mark.parametrize(
    ("path", "passed", "detail"),
    [
        ("/ok", True, "HTTP 200"),
        ("/moved", True, "HTTP 302"),  # a redirect passes, and is not followed
        ("/continue", True, "HTTP 204"),  # 1xx first: the final response decides
        ("/error", False, "HTTP 500"),
        ("/unavailable", False, "HTTP 503"),
        ("/garbage", False, "not an HTTP response"),
        ("/closed", False, "the connection closed before a response"),
        ("/endless-head", False, "not an HTTP response"),  # past 16 KiB of head
    ],
)
async def test_http_passes_on_200_to_399(
    http: tuple[Http, int], path: str, passed: bool, detail: str
) -> None:
    server, port = http
    check = parse_check(f"http://{HOST}:{port}{path}?from=test", timeout=10)
    result = await probe(check)
    assert result.passed is passed and result.detail.startswith(detail), result
    within(result, check)
    (request,) = server.requests  # one request: nothing retried, no redirect followed
    lines = request.decode().split("\r\n")
    assert lines[0] == f"GET {path}?from=test HTTP/1.1"  # the query kept
    assert f"host: {HOST}:{port}" in [line.lower() for line in lines]


async def test_https_does_not_verify_the_certificate(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()  # trusted by nobody: the check asks "does it answer"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("somewhere.else").configure_cert(context)
    server = Http()
    async with listening(server, ssl=context) as port:
        result = await probe(parse_check(f"https://{HOST}:{port}/ok", timeout=10))
        assert result == Result(True, "HTTP 200", result.took)
    async with listening(speaks_first) as plain:  # TLS to plain HTTP fails, and says so
        result = await probe(parse_check(f"https://{HOST}:{plain}/ok", timeout=10))
        assert not result.passed and result.detail, result


@contextlib.contextmanager
def closed_port(host: str = HOST) -> Iterator[int]:
    """A port bound but not listening (a connection is refused), held so no one else
    takes it meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["http", "tcp"])
async def test_a_closed_port_is_refused(kind: str) -> None:
    with closed_port() as port:
        text = f"http://{HOST}:{port}/" if kind == "http" else f"tcp:{HOST}:{port}"
        check = parse_check(text, timeout=10)
        result = await probe(check)
    assert result == Result(False, "Connection refused", result.took)
    within(result, check)


@pytest.mark.parametrize("kind", ["http", "https"])
async def test_a_listener_that_never_answers_fails_at_the_timeout(kind: str) -> None:
    async with listening(never_answers) as port:
        check = parse_check(f"{kind}://{HOST}:{port}/ok", timeout=0.3)
        result = await probe(check)
    assert result == Result(False, "no answer within 0.3s", result.took)
    assert result.took >= 0.25  # (asyncio's clock may round a little early)
    within(result, check)


async def test_tcp_passes_when_a_connection_opens() -> None:
    async with listening(never_answers) as port:
        result = await probe(parse_check(f"tcp:{HOST}:{port}", timeout=10))
    assert result == Result(True, "connected", result.took)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_tcp_and_http_over_ipv6() -> None:
    async with listening(Http(), host="::1") as port:
        assert (await probe(parse_check(f"tcp:[::1]:{port}", timeout=10))).passed
        result = await probe(parse_check(f"http://[::1]:{port}/ok", timeout=10))
        assert result.detail == "HTTP 200"
    with closed_port("::1") as port:
        assert not (await probe(parse_check(f"tcp:[::1]:{port}", timeout=10))).passed


# -- exec probes ------------------------------------------------------------------------

PY = shlex.quote(sys.executable)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a parent that never reaps it is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def all_gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every one of ``pids`` is gone within ``timeout`` (SIGKILL takes effect
    asynchronously; polled, never slept on)."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize(
    ("command", "passed", "detail"),
    [
        ("true", True, "exit 0"),
        ("false", False, "exit 1"),
        ("sh -c 'echo all good'", True, "exit 0: all good"),
        ("sh -c 'echo not ready >&2; exit 3'", False, "exit 3: not ready"),  # stderr too
        ("sh -c 'kill -TERM $$'", False, "killed by signal 15"),
        ("/nonexistent/check", False, "No such file or directory"),
    ],
)
async def test_exec_passes_when_the_command_exits_0(
    command: str, passed: bool, detail: str
) -> None:
    check = parse_check(f"exec:{command}", timeout=20)
    result = await probe(check)
    assert (result.passed, result.detail) == (passed, detail)
    within(result, check)


async def test_exec_past_its_timeout_is_killed_with_all_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The shell waits on a child of its own: both must go when the check gives up.
    script = f"echo $$ > {pids}; sleep 60 & echo $! >> {pids}; wait"
    check = parse_check(f"exec:sh -c {shlex.quote(script)}", timeout=0.5)
    result = await probe(check)
    assert result == Result(False, "no answer within 0.5s", result.took)
    within(result, check)
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 2
    assert await all_gone(started), [p for p in started if alive(p)]


async def test_exec_that_leaves_a_child_behind_ends_when_it_exits(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo started"
    check = parse_check(f"exec:sh -c {shlex.quote(script)}", timeout=20)
    result = await probe(check)
    # The shell's status decides at once (the child holding its output does not hold
    # the check), and the child goes with the check.
    assert (result.passed, result.detail) == (True, "exit 0: started")
    assert result.took < 10, result
    assert await all_gone([int(pids.read_text())])


async def test_exec_printing_without_end_is_killed_at_the_timeout() -> None:
    endless = f"{PY} -c " + shlex.quote("while True: print('y' * 1000)")
    check = parse_check(f"exec:{endless}", timeout=1)
    for _ in range(3):  # (once hung for good when the pipe was paused at the timeout)
        result = await probe(check)
        assert result == Result(False, "no answer within 1s", result.took)
        within(result, check)


async def test_exec_output_is_read_to_the_end_and_clipped() -> None:
    lots = "import sys; sys.stdout.write('z' * 1_000_000 + '\\n'); sys.exit(4)"
    check = parse_check(f"exec:{PY} -c {shlex.quote(lots)}", timeout=20)
    result = await probe(check)
    assert not result.passed
    assert result.detail == "exit 4: " + "z" * 160  # the start of it, one line
    within(result, check)


async def test_exec_output_is_one_line_of_words() -> None:
    script = "printf 'line one\\n\\tline\\r\\ntwo   \\n'; exit 2"
    result = await probe(parse_check(f"exec:sh -c {shlex.quote(script)}", timeout=20))
    assert result.detail == "exit 2: line one line two"


async def test_a_check_built_by_hand_never_makes_probe_raise() -> None:
    # parse_check refuses these; a Check made directly must still only fail.
    for check in (
        Check("tcp", "a" * 300, 80, timeout=5),
        Check("http", "bad\x00host", 80, timeout=5),
        Check("exec", argv=("nul\x00byte",), timeout=5),
    ):
        result = await probe(check)
        assert not result.passed and result.detail, (check, result)
