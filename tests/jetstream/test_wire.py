"""The wire client (``WireConnection``) against real servers, and against hostile fakes.

Real nats-servers (plain, user/password, token, TLS) check that it speaks NATS as
nats-py does. The fakes are the one exception to "NATS is never mocked": a TCP server
of our own that sends what no real server would, to check that each malformed frame
ends the connection promptly with ``ConnectionLost`` (or ``Unreachable`` while
connecting), never a hang, a spin or a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import nats
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from registry.errors import NotAuthenticated, Unreachable
from registry.jetstream.connection import ConnectionLost, NoResponders
from registry.jetstream.server import NatsServer
from registry.jetstream.wire import WireConnection, _Headers, _parse_headers
from tests import servers
from tests.servers import AUTH_ENV, PASSWORDS, ROOT, tls_files

ENV = AUTH_ENV
TOKEN = "t0k3n-s3cr3t"
TOKEN_CONF = """
listen: 127.0.0.1:4222
jetstream { store_dir: $SKYFLOW_STORE_DIR }
authorization { token: $SKYFLOW_TOKEN }
"""

Message = tuple[str, str, Mapping[str, str] | None, bytes]


def free_port() -> int:
    """A port nothing listens on (just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def collect(into: list[Message]) -> Callable[[str, str, Mapping[str, str] | None, bytes], None]:
    def handler(subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes) -> None:
        into.append((subject, reply, headers, data))

    return handler


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def conn(url: str) -> AsyncIterator[WireConnection]:
    connection = await WireConnection.connect(url)
    yield connection
    await connection.close()


# -- against the real server ------------------------------------------------------------


async def test_request_reply_with_jetstream(conn: WireConnection) -> None:
    reply = await conn.request("$JS.API.INFO", timeout=2)
    assert reply.status is None
    assert json.loads(reply.data)["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert reply.subject.startswith("_INBOX.")


async def test_direct_get_status_and_stored_headers(url: str, conn: WireConnection) -> None:
    stream = f"WIRE_{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream}.>"], allow_direct=True)
        try:
            missing = await conn.request(f"$JS.API.DIRECT.GET.{stream}.{stream}.none", timeout=2)
            assert (missing.status, missing.data) == ("404", b"")
            assert missing.description == "Message Not Found"

            headers = {"Nats-Msg-Id": "id-1", "X-Mixed-Case": "Value with  spaces"}
            ack = await conn.request(f"{stream}.a", b"body", headers=headers, timeout=2)
            assert json.loads(ack.data)["seq"] == 1
            got = await conn.request(f"$JS.API.DIRECT.GET.{stream}.{stream}.a", timeout=2)
            assert got.status is None and got.data == b"body"
            assert got.headers["X-Mixed-Case"] == "Value with  spaces"
            assert got.headers["Nats-Sequence"] == "1"
            assert got.headers["Nats-Msg-Id"] == "id-1"
        finally:
            await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_headers_round_trip_case_sensitive_and_lazy(conn: WireConnection) -> None:
    subject = f"wire.{uuid.uuid4().hex}"
    received: list[Message] = []
    await conn.subscribe(subject, collect(received))
    sent = {"X-Key": "upper", "x-key": "lower", "Empty": "", "Spaced": "a  b"}
    await conn.publish(subject, b"with", headers=sent, reply="the.reply")
    await conn.publish(subject, b"without")
    await conn.flush(2)
    await until(lambda: len(received) == 2)
    (subj, reply, headers, data), plain = received
    assert (subj, reply, data) == (subject, "the.reply", b"with")
    assert plain == (subject, "", None, b"without")
    assert headers is not None
    # Nothing parsed until someone reads it: a replay need not pay for headers it skips.
    assert getattr(headers, "_parsed", "absent") is None
    assert dict(headers) == sent
    assert "Status" not in headers


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab:-é \t\xff", max_size=12), max_size=5),
    status=st.sampled_from(["", " 100", " 100 Idle Heartbeat", " 404 No Messages"]),
    key=st.sampled_from(["a", "b", "a-b", "é", "Status", "Description", "ab", "\ufffd"]),
    encoding=st.sampled_from(["utf-8", "latin-1"]),  # latin-1: bytes that are not UTF-8
)
@example(lines=["é:x"], status="", key="\ufffd", encoding="latin-1")  # a replaced name
@example(lines=["a:x"], status=" 100 Idle Heartbeat", key="Description", encoding="utf-8")
def test_asking_for_a_name_answers_as_the_parsed_block_would(
    lines: list[str], status: str, key: str, encoding: str
) -> None:
    """``in`` may skip the parse when the name's bytes are absent; it must never answer
    otherwise than the parsed block (a rebuild asks every event for a signature so)."""
    raw = ("NATS/1.0" + status + "\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode(encoding)
    assert (key in _Headers(raw)) == (key in _parse_headers(raw))


async def test_no_responders_and_timeout(conn: WireConnection) -> None:
    started = time.monotonic()
    with pytest.raises(NoResponders):
        await conn.request(f"nobody.{uuid.uuid4().hex}", timeout=5)
    assert time.monotonic() - started < 3  # well before the 5 s timeout: refused at once

    silent = f"silent.{uuid.uuid4().hex}"
    await conn.subscribe(silent, collect([]))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await conn.request(silent, timeout=0.2)
    assert 0.15 < time.monotonic() - started < 3
    await conn.flush(2)  # still usable


async def test_requests_answered_out_of_order_reach_their_callers(conn: WireConnection) -> None:
    subject = f"echo.{uuid.uuid4().hex}"
    asked: list[Message] = []
    await conn.subscribe(subject, collect(asked))
    first = asyncio.ensure_future(conn.request(subject, b"1", timeout=5))
    second = asyncio.ensure_future(conn.request(subject, b"2", timeout=5))
    await until(lambda: len(asked) == 2)
    for _, reply, _, data in reversed(asked):
        await conn.publish(reply, b"answer " + data, headers={"Echo": data.decode()})
    assert (await first).data == b"answer 1"
    assert (await second).headers["Echo"] == "2"


async def test_unsubscribe_stops_delivery(conn: WireConnection) -> None:
    subject = f"wire.{uuid.uuid4().hex}"
    received: list[Message] = []
    sub = await conn.subscribe(subject, collect(received))
    await conn.publish(subject, b"1")
    await conn.flush(2)
    await until(lambda: len(received) == 1)
    await sub.unsubscribe()
    await conn.publish(subject, b"2")
    await conn.flush(2)
    await asyncio.sleep(0.05)
    assert [data for *_, data in received] == [b"1"]


async def test_reads_every_message_across_read_boundaries(url: str, conn: WireConnection) -> None:
    """Sizes from empty to several reads long, with and without headers, in order."""
    subject = f"wire.{uuid.uuid4().hex}"
    sizes = [0, 1, 2, 100, 65_535, 262_143, 262_144, 262_145, 700_000, *range(0, 5000, 7)]
    received: list[Message] = []
    await conn.subscribe(subject, collect(received))
    await conn.flush(2)
    nc = await nats.connect(url)
    try:
        for i, size in enumerate(sizes):
            body = bytes([i % 251]) * size
            await nc.publish(subject, body, headers={"Tag": str(i)} if i % 2 else None)
        await nc.flush()
    finally:
        await nc.close()
    await until(lambda: len(received) == len(sizes), 10)
    for i, (_, _, headers, data) in enumerate(received):
        assert data == bytes([i % 251]) * sizes[i]
        assert (headers["Tag"] if headers is not None else None) == (str(i) if i % 2 else None)


async def test_refuses_what_would_corrupt_the_stream(conn: WireConnection) -> None:
    with pytest.raises(ValueError, match="subject"):
        await conn.publish("a b\r\nPUB evil 0")
    with pytest.raises(ValueError, match="header"):
        await conn.publish("a", headers={"Bad\r\nKey": "v"})
    with pytest.raises(ValueError, match="max_payload"):
        await conn.publish("a", b"x" * (conn.info["max_payload"] + 1))
    await conn.flush(2)
    assert not conn.is_closed


async def test_dead_first_url_is_passed_over(url: str) -> None:
    servers = f"nats://127.0.0.1:{free_port()},{url}"
    connection = await WireConnection.connect(servers)
    try:
        assert connection.url == servers
        assert (await connection.request("$JS.API.INFO", timeout=2)).status is None
    finally:
        await connection.close()


async def test_refused_port_fails_fast_and_says_so() -> None:
    started = time.monotonic()
    with pytest.raises(Unreachable, match="connection refused") as caught:
        await WireConnection.connect(f"nats://alice:pa55word@127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 3
    assert "pa55word" not in str(caught.value) and "alice:***@" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:4222", "unsupported scheme http://"),
        ("nats://127.0.0.1:port", "is not a port number"),
        ("nats://:4222", "no host"),
        (" , ", "no server URL given"),
    ],
)
async def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(Unreachable, match=reason):
        await WireConnection.connect(url)


async def test_a_lost_connection_fails_everything_at_once(fresh_server: NatsServer) -> None:
    connection = await WireConnection.connect(fresh_server.url)
    try:
        assert connection.reconnects is False
        connection.on_reconnect(lambda: None)()  # accepted, never called
        await connection.subscribe("silent", collect([]))
        pending = asyncio.ensure_future(connection.request("silent", timeout=30))
        await connection.flush(2)
        fresh_server.kill()
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match=r"closed the connection|failed"):
            await pending
        assert time.monotonic() - started < 4  # the request waited 30 s: the loss ends it
        assert connection.is_closed
        with pytest.raises(ConnectionLost):
            await connection.publish("x")
        with pytest.raises(ConnectionLost):
            await connection.request("x", timeout=1)
        with pytest.raises(ConnectionLost):
            await connection.flush(1)
    finally:
        await connection.close()


async def test_close_fails_pending_requests_and_is_idempotent(url: str) -> None:
    connection = await WireConnection.connect(url)
    await connection.subscribe("silent.close", collect([]))
    pending = asyncio.ensure_future(connection.request("silent.close", timeout=30))
    await connection.flush(2)
    await connection.close()
    await connection.close()
    with pytest.raises(ConnectionLost, match="closed"):
        await pending
    assert connection.is_closed


def test_importing_it_loads_neither_nats_py_nor_pydantic() -> None:
    code = (
        "import sys, registry.jetstream.wire;"
        "print([m for m in ('nats', 'pydantic') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- credentials ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("wire-auth") / "store"
    with NatsServer(store, config=ROOT / "nats-server-auth.conf", env=ENV) as server:
        yield server


async def test_user_and_password(auth_server: NatsServer) -> None:
    host = auth_server.url.removeprefix("nats://")
    secret = PASSWORDS["admin"]
    for url, user, password in (
        (auth_server.url, "admin", secret),
        (f"nats://admin:{secret}@{host}", None, None),
        (f"nats://admin:wrong@{host}", "admin", secret),  # explicit ones win over the URL's
    ):
        connection = await WireConnection.connect(url, user=user, password=password)
        try:
            assert PASSWORDS["admin"] not in connection.url
            assert (await connection.request("$JS.API.INFO", timeout=2)).status is None
        finally:
            await connection.close()


async def test_refused_credentials_never_show_the_password(auth_server: NatsServer) -> None:
    host = auth_server.url.removeprefix("nats://")
    for url, user, password in (
        (auth_server.url, None, None),
        (f"nats://admin:not-{PASSWORDS['admin']}@{host}", None, None),
        (auth_server.url, "admin", "hunter2-wrong"),
    ):
        with pytest.raises(NotAuthenticated, match="authorization violation") as caught:
            await WireConnection.connect(url, user=user, password=password)
        text = f"{caught.value} {caught.value.args} {caught.value.url}"
        assert PASSWORDS["admin"] not in text and "hunter2" not in text


async def test_a_refusal_of_credentials_beats_a_refused_port(auth_server: NatsServer) -> None:
    dead = f"nats://admin:s3cret-pw@127.0.0.1:{free_port()}"
    wrong = auth_server.url.replace("nats://", "nats://admin:s3cret-pw@")
    with pytest.raises(NotAuthenticated) as caught:
        await WireConnection.connect(f"{dead},{wrong}")
    assert "s3cret-pw" not in str(caught.value)


async def test_permission_violations_reach_error_listeners(auth_server: NatsServer) -> None:
    connection = await WireConnection.connect(
        auth_server.url, user="viewer", password=PASSWORDS["viewer"]
    )
    try:
        errors: list[str] = []
        connection.on_error(errors.append)
        await connection.publish("skyflow.svc.shop.forbidden", b"x")
        await connection.flush(2)
        assert errors == ['Permissions Violation for Publish to "skyflow.svc.shop.forbidden"']
        assert not connection.is_closed
    finally:
        await connection.close()


async def test_token(tmp_path: Path) -> None:
    config = tmp_path / "token.conf"
    config.write_text(TOKEN_CONF)
    with NatsServer(tmp_path / "store", config=config, env={"SKYFLOW_TOKEN": TOKEN}) as server:
        host = server.url.removeprefix("nats://")
        for url, token in (
            (server.url, TOKEN),
            (f"nats://{TOKEN}@{host}", None),
            (f"nats://wrong@{host}", TOKEN),
        ):
            connection = await WireConnection.connect(url, token=token)
            assert TOKEN not in connection.url
            await connection.flush(2)
            await connection.close()
        for url in (server.url, f"nats://{TOKEN}-x@{host}"):
            with pytest.raises(NotAuthenticated) as caught:
                await WireConnection.connect(url)
            assert TOKEN not in str(caught.value)


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, Path]]:
    with servers.tls_server(tmp_path_factory.mktemp("wire-tls")) as (server, files):
        yield server, files.ca


async def test_tls_with_the_right_ca(tls_server: tuple[NatsServer, Path]) -> None:
    server, ca_file = tls_server
    assert server.url.startswith("tls://")
    plain_scheme = server.url.replace("tls://", "nats://")  # the server requires TLS: upgraded
    for url in (server.url, plain_scheme):
        connection = await WireConnection.connect(
            url, tls_ca=ca_file, user="admin", password=PASSWORDS["admin"]
        )
        try:
            assert (await connection.request("$JS.API.INFO", timeout=2)).status is None
        finally:
            await connection.close()


async def test_tls_without_the_ca_names_the_option(tls_server: tuple[NatsServer, Path]) -> None:
    server, _ = tls_server
    url = server.url.replace("tls://", f"tls://admin:{PASSWORDS['admin']}@")
    with pytest.raises(Unreachable, match="certificate not trusted") as caught:
        await WireConnection.connect(url)
    assert "--tlsca" in str(caught.value)
    assert PASSWORDS["admin"] not in str(caught.value)


async def test_tls_never_falls_back_to_plaintext(url: str, tmp_path: Path) -> None:
    ca_file = tls_files(tmp_path).ca
    for server, tls_ca in ((url.replace("nats://", "tls://"), None), (url, ca_file)):
        with pytest.raises(Unreachable, match="the server does not offer TLS"):
            await WireConnection.connect(server, tls_ca=tls_ca)


# -- hostile servers --------------------------------------------------------------------

INFO = b'INFO {"server_id":"fake","version":"2.15.0","headers":true,"max_payload":1024}\r\n'
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Fake:
    """A TCP server on 127.0.0.1 running ``script`` for each client; NATS is not mocked
    anywhere else. ``hung_up`` is set when a client closes its side."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.hung_up = asyncio.Event()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.script(reader, writer)
            while await reader.read(65536):  # until the client hangs up
                pass
            self.hung_up.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.hung_up.set()
        finally:
            writer.transport.abort()

    @property
    def url(self) -> str:
        return f"nats://someone:hunter2@127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def fake(script: Script) -> AsyncIterator[Fake]:
    server_tasks: set[asyncio.Task[None]] = set()
    the_fake = Fake(script)

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_tasks.add(asyncio.ensure_future(the_fake.serve(reader, writer)))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    the_fake.port = server.sockets[0].getsockname()[1]
    try:
        yield the_fake
    finally:
        server.close()
        for task in server_tasks:
            task.cancel()
        if server_tasks:
            await asyncio.wait(server_tasks)
        await server.wait_closed()


def after_handshake(*frames: bytes, info: bytes = INFO) -> Script:
    """Connect properly, wait for the client's first PING after it, then send ``frames``."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(info)
        await reader.readuntil(b"PING\r\n")
        writer.write(b"PONG\r\n")
        await reader.readuntil(b"PING\r\n")
        for frame in frames:
            writer.write(frame)
            await writer.drain()

    return script


def at_connect(*frames: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for frame in frames:
            writer.write(frame)
        await writer.drain()

    return script


TB = 1 << 40


@pytest.mark.parametrize(
    "frame",
    [
        b"MSG a 1 -15\r\n",
        b"MSG a 1\r\n",
        b"MSG a 1 99999999999999\r\n",
        b"MSG a 1 +3\r\nabc\r\n",
        b"MSG a 1 1_0\r\n0123456789\r\n",
        b"MSG a 1 %d\r\n" % TB,
        b"MSG a 1 70000\r\n",  # beyond max_payload 1024 and the header allowance
        b"MSG a 1 3\r\nabcXY",  # payload not followed by CRLF
        b"MSG a x 1\r\nx\r\n",
        b"MSG \xff\xfe 1 1\r\nx\r\n",
        b"HMSG a 1 50 10\r\n",
        b"HMSG a 1 -1 10\r\n",
        b"HMSG a 1 4 %d\r\n" % TB,
        b"HMSG a 1 4 10\r\nXXXXhello1\r\n",  # no NATS/1.0 header line
        b"HMSG a 1 10\r\n",
        b"GARBAGE op\r\n",
        b"\r\n",
        b"INFO {not json\r\n",
        b"INFO [1, 2]\r\n",
        b'INFO {"max_payload": -1}\r\n',
        b"x" * 70_000,  # a control line that never ends
    ],
)
async def test_a_malformed_frame_closes_the_connection(frame: bytes) -> None:
    async with fake(after_handshake(frame)) as server:
        connection = await WireConnection.connect(server.url)
        received: list[Message] = []
        await connection.subscribe("a", collect(received))
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match="protocol error from") as caught:
            await connection.flush(10)  # the fake never answers it
        assert time.monotonic() - started < 4  # the flush would wait 10 s
        assert "hunter2" not in str(caught.value) and "someone:***@" in str(caught.value)
        assert connection.is_closed and received == []
        await asyncio.wait_for(server.hung_up.wait(), 2)  # it closed its socket
        with pytest.raises(ConnectionLost, match="protocol error"):
            await connection.publish("a")
        await connection.close()


@pytest.mark.parametrize(
    "frames",
    [
        (b"INFO {not json\r\n",),
        (b"INFO " + b"[" * 50_000 + b"\r\n",),
        (b'INFO {"max_payload": "big"}\r\n',),
        (b'INFO {"max_payload": %d}\r\n' % -TB,),
        (b"INFO " + b" " * 70_000 + b"{}\r\n",),
        (b"HELLO\r\n",),
        (INFO, b"MSG a 1 -15\r\n"),
        (INFO, b"-ERR 'Unknown Protocol Operation'\r\n"),
    ],
)
async def test_a_malformed_handshake_is_unreachable(frames: tuple[bytes, ...]) -> None:
    async with fake(at_connect(*frames)) as server:
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"protocol error|refused us") as caught:
            await WireConnection.connect(server.url, timeout=5)
        assert time.monotonic() - started < 4  # the timeout is 5 s
        assert "hunter2" not in str(caught.value)
        await asyncio.wait_for(server.hung_up.wait(), 2)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [((), "no answer"), ((INFO,), "no answer to CONNECT")],
)
async def test_a_silent_server_fails_within_the_timeout(
    frames: tuple[bytes, ...], reason: str
) -> None:
    async with fake(at_connect(*frames)) as server:
        started = time.monotonic()
        with pytest.raises(Unreachable, match=reason):
            await WireConnection.connect(server.url, timeout=0.5)
        assert 0.4 < time.monotonic() - started < 3


async def test_a_silent_server_ranks_above_a_refused_port() -> None:
    async with fake(at_connect()) as server:
        with pytest.raises(Unreachable, match="no answer"):
            await WireConnection.connect(f"127.0.0.1:{free_port()},{server.url}", timeout=0.3)


async def test_tls_refused_by_a_server_that_only_claims_it() -> None:
    claims = b'INFO {"headers":true,"tls_required":true}\r\n'
    async with fake(at_connect(claims, b"this is not a TLS handshake\r\n" * 10)) as server:
        with pytest.raises(Unreachable, match="TLS") as caught:
            await WireConnection.connect(server.url, timeout=1)
        assert "hunter2" not in str(caught.value)


async def test_a_flood_leaves_the_loop_responsive_and_cancellable() -> None:
    """Ctrl-C must work while a server pours messages: the reader yields to the loop."""
    burst = b"MSG a 1 1\r\nx\r\n" * 20_000

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await after_handshake()(reader, writer)
        while True:
            writer.write(burst)
            await writer.drain()

    async with fake(flood) as server:
        connection = await WireConnection.connect(server.url)
        received: list[Message] = []
        await connection.subscribe("a", collect(received))
        waiting = asyncio.ensure_future(connection.flush(30))
        await until(lambda: len(received) > 100_000, 10)
        for _ in range(5):
            started = time.monotonic()
            await asyncio.sleep(0.01)
            assert time.monotonic() - started < 1.0  # a starved loop would not wake at all
        waiting.cancel()
        await asyncio.wait([waiting], timeout=1)
        assert waiting.cancelled()
        await connection.close()
        assert connection.is_closed


async def test_messages_split_anywhere_are_reassembled() -> None:
    block = b"NATS/1.0 100 Idle\r\n\r\n"
    frames = (
        b"PING\r\nHMSG a 1 r.x %d %d\r\n%bhello\r\n" % (len(block), len(block) + 5, block)
        + b"MSG a 1 %d\r\n%b\r\n" % (1000, b"y" * 1000)
        + b"+OK\r\nMSG a 1 0\r\n\r\n"
    )

    async def one_byte_at_a_time(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await after_handshake()(reader, writer)
        for i in range(len(frames)):
            writer.write(frames[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"PONG\r\n")

    async with fake(one_byte_at_a_time) as server:
        connection = await WireConnection.connect(server.url)
        received: list[Message] = []
        await connection.subscribe("a", collect(received))
        await connection.flush(5)  # answered after every frame
        await connection.close()
    (_, reply, headers, data), big, empty = received
    assert (reply, data) == ("r.x", b"hello")
    assert headers == {"Status": "100", "Description": "Idle"}
    assert big == ("a", "", None, b"y" * 1000)
    assert empty == ("a", "", None, b"")


async def test_the_servers_last_word_is_the_reason() -> None:
    async def stale(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await after_handshake(b"-ERR 'Stale Connection'\r\n")(reader, writer)
        writer.close()  # as nats-server does after a fatal error

    async with fake(stale) as server:
        connection = await WireConnection.connect(server.url)
        errors: list[str] = []
        connection.on_error(errors.append)
        await connection.subscribe("a", collect([]))
        with pytest.raises(ConnectionLost, match=r"closed the connection \(Stale Connection\)"):
            await connection.flush(5)
        assert errors == ["Stale Connection"]
        await connection.close()


async def test_a_failing_handler_closes_the_connection_and_says_why(url: str) -> None:
    connection = await WireConnection.connect(url)
    try:

        def broken(
            subject: str, reply: str, headers: Mapping[str, str] | None, data: bytes
        ) -> None:
            raise KeyError("bug")

        await connection.subscribe("wire.broken", broken)
        await connection.publish("wire.broken", b"x")
        with pytest.raises(ConnectionLost, match=r"handler .* raised KeyError") as caught:
            await connection.flush(2)
        assert isinstance(caught.value.__cause__, KeyError)
        assert connection.is_closed
    finally:
        await connection.close()


async def test_when_nothing_answers_anywhere_the_whole_list_is_named() -> None:
    servers = f"nats://127.0.0.1:{free_port()},nats://u:pw@127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable, match="connection refused") as caught:
        await WireConnection.connect(servers)
    assert caught.value.url == servers.replace("u:pw@", "u:***@")
