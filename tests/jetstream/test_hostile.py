"""What a broken or hostile server says reaches the user as one line
and an exit code, promptly, through the whole command (the frame-level checks of the wire
client are in ``tests/jetstream/test_wire.py``); and no error repeats a password."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import skyctl


def run(argv: list[str]) -> tuple[int, str]:
    result = skyctl(*argv, url=None)
    return result.code, result.err


Answer = Callable[[str, bytes], bytes | None]  # (subject, payload) -> reply payload


@contextlib.contextmanager
def fake_server(answer: Answer) -> Iterator[str]:
    """Just enough of a NATS server: INFO, PONG, and a reply to each request."""
    ready = threading.Event()
    port: list[int] = []
    stop: list[asyncio.AbstractEventLoop] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = {"server_id": "fake", "version": "2.15.1", "headers": True, "max_payload": 1 << 20}
        writer.write(b"INFO " + json.dumps(info).encode() + b"\r\n")
        subs: dict[str, str] = {}
        try:
            await serve_one(reader, writer, subs)
        finally:
            writer.close()

    async def serve_one(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, subs: dict[str, str]
    ) -> None:
        while line := await reader.readline():
            words = line.decode().split()
            if not words:
                continue
            if words[0] == "PING":
                writer.write(b"PONG\r\n")
            elif words[0] == "SUB":
                subs[words[1]] = words[-1]
            elif words[0] in ("PUB", "HPUB"):
                body = await reader.readexactly(int(words[-1]) + 2)
                reply = words[2] if len(words) > (4 if words[0] == "HPUB" else 3) else ""
                data = answer(words[1], body[:-2])
                sid = next((s for p, s in subs.items() if reply.startswith(p.rstrip("*"))), None)
                if data is not None and reply and sid:
                    writer.write(f"MSG {reply} {sid} {len(data)}\r\n".encode() + data + b"\r\n")
            await writer.drain()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        stop.append(loop)
        server = loop.run_until_complete(asyncio.start_server(client, "127.0.0.1", 0))
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield f"nats://127.0.0.1:{port[0]}"
    finally:
        stop[0].call_soon_threadsafe(stop[0].stop)
        thread.join(5)


@pytest.mark.parametrize(
    "answer",
    [
        lambda subject, _: b"<html>not json</html>",
        lambda subject, _: b"[1, 2, 3]",
        lambda subject, _: json.dumps({"error": "a string, not an object"}).encode(),
        lambda subject, _: json.dumps({"config": "not a map"}).encode(),
        lambda subject, _: b"\xff\xfe",
    ],
    ids=["html", "list", "bad-error", "bad-config", "binary"],
)
def test_an_api_answer_that_is_not_the_json_expected_is_one_line(answer: Answer) -> None:
    with fake_server(answer) as url:
        started = time.monotonic()
        code, err = run(["get", "svc", "-S", url])
    assert code == 3, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert time.monotonic() - started < 10


def test_a_silent_api_fails_within_the_commands_timeout() -> None:
    with fake_server(lambda subject, _: None) as url:
        started = time.monotonic()
        code, err = run(["get", "svc", "-S", url])
    assert (code == 3 and "timed out" in err) or "did not answer" in err, err
    assert time.monotonic() - started < 12


@pytest.mark.parametrize("client", ["wire", "nats-py"])
def test_no_error_repeats_a_password(monkeypatch: pytest.MonkeyPatch, client: str) -> None:
    monkeypatch.setenv("SKYFLOW_NATS_CLIENT", client)
    for url in ("nats://admin:s3cr3t-pw@127.0.0.1:1", "nats://s3cr3t-tok@127.0.0.1:1"):
        code, err = run(["get", "svc", "-S", url])
        assert code == 3 and "s3cr3t" not in err, err
        assert "127.0.0.1:1" in err
