"""The agent's protocol: what a client sends arrives as sent, and whatever bytes come
over the socket are either a message or ``BadMessage``, never a crash."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry import Registry
from registry.agent.wire import (
    MAX_REQUEST,
    BadMessage,
    Reply,
    Request,
    decode_reply_header,
    decode_request,
    encode_reply,
    encode_request,
)
from tests.agent.agents import agent, seed, status, through

texts = st.text(alphabet=st.characters(exclude_characters="\0"), max_size=40)


@given(
    argv=st.lists(texts, max_size=8),
    env=st.dictionaries(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=12), texts
    ),
    cwd=texts.map(lambda t: "/" + t),
)
def test_a_request_arrives_as_it_was_sent(argv: list[str], env: dict[str, str], cwd: str) -> None:
    # (Lone surrogates too: arguments that are not UTF-8 reach Python that way.)
    decoded = decode_request(encode_request(Request(argv, env, cwd)).rstrip(b"\n"))
    assert (decoded.argv, decoded.env, decoded.cwd, decoded.status) == (argv, env, cwd, False)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_request_or_bad(data: bytes) -> None:
    try:
        request = decode_request(data)
    except BadMessage:
        return
    assert all(isinstance(a, str) for a in request.argv)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_reply_header_or_bad(data: bytes) -> None:
    try:
        reply, out, err = decode_reply_header(data)
    except BadMessage:
        return
    assert out >= 0 and err >= 0 and reply.status in ("done", "direct", "refused", "status")


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":1,"argv":"get","env":{},"cwd":"/"}',
        b'{"v":1,"argv":[],"env":{"A=B":"x"},"cwd":"/"}',
        b'{"v":1,"argv":[],"env":{},"cwd":"relative"}',
        b'{"v":2,"argv":[],"env":{},"cwd":"/"}',
        b'{"v":1,"argv":["a\\u0000b"],"env":{},"cwd":"/"}',
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_malformed_requests_are_refused_by_name(line: bytes) -> None:
    with pytest.raises(BadMessage):
        decode_request(line)


def test_a_reply_carries_output_bytes_exactly() -> None:
    reply = Reply("done", code=3, stdout=b"\xff out\n", stderr=b"err\n")
    data = encode_reply(reply)
    line, _, rest = data.partition(b"\n")
    header, out, err = decode_reply_header(line)
    assert (header.status, header.code, rest[:out], rest[out:]) == (
        "done",
        3,
        b"\xff out\n",
        b"err\n",
    )
    assert len(rest) == out + err


async def test_the_agent_survives_hostile_clients_and_keeps_serving(
    url: str, ns: str, registry: Registry
) -> None:
    await seed(registry, ns)
    async with agent(url) as path:

        async def send(data: bytes, *, close_early: bool = False) -> bytes:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(data)
            await writer.drain()
            if close_early:
                writer.close()
                return b""
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            return answer

        assert b'"status":"refused"' in await send(b"not json\n")
        assert b'"status":"refused"' in await send(b'{"v":1}\n')
        assert b'"status":"refused"' in await send(b"x" * (MAX_REQUEST + 10) + b"\n")
        assert await send(b'{"v":1, "argv": [', close_early=True) == b""
        assert await send(b"no newline at all") == b""  # closed without a request
        reply = await asyncio.to_thread(through, path, url, "get", "svc", "-n", ns)
        assert reply.status == "done" and b"web" in reply.stdout, reply.why
        assert status(path)["served"] == 1
