"""Batched direct gets: the last message of many subjects in a few round trips.

nats-py has no API for the server's batched direct get, so it is done by hand: one
request to ``$JS.API.DIRECT.GET.<stream>`` with ``multi_last`` naming up to 1024
subjects, answered by one message per subject that has any, then a ``204 EOB`` status
(``404`` when none has). The stream must allow direct gets, which the registry checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from nats.aio.msg import Msg

from registry.entry import StoredMessage
from registry.errors import ServerError
from registry.jetstream.connection import JetStreamLog
from registry.jetstream.lite import DIRECT_HEADERS, parse_time_ns

__all__ = ["MULTI_LAST_MAX", "last_many"]

# The server refuses a multi_last request naming more subjects than this (413).
MULTI_LAST_MAX = 1024
_IN_FLIGHT = 4


def stored_from_direct(headers: dict[str, str], data: bytes) -> StoredMessage:
    own = {k: v for k, v in headers.items() if k not in DIRECT_HEADERS}
    return StoredMessage(
        seq=int(headers["Nats-Sequence"]),
        subject=headers["Nats-Subject"],
        data=data,
        headers=own,
        time_ns=parse_time_ns(headers["Nats-Time-Stamp"]),
    )


async def last_many(log: JetStreamLog, subjects: Sequence[str]) -> dict[str, StoredMessage]:
    """The last message of each of ``subjects`` that has one, by subject."""
    unique = list(dict.fromkeys(subjects))
    chunks = [unique[i : i + MULTI_LAST_MAX] for i in range(0, len(unique), MULTI_LAST_MAX)]
    found: dict[str, StoredMessage] = {}
    if not chunks:
        return found
    nc = log.nc
    prefix = nc.new_inbox()
    waiting: dict[str, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()

    async def on_msg(msg: Msg) -> None:
        token = msg.subject.rpartition(".")[2]
        future = waiting.get(token)
        if future is None or future.done():
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            stored = stored_from_direct(headers, msg.data)
            found[stored.subject] = stored
        elif status in ("204", "404"):  # end of batch; 404: none of them has a message
            future.set_result(None)
        else:
            description = headers.get("Description", "")
            future.set_exception(ServerError(f"direct get failed: {status} {description}"))

    sub = await nc.subscribe(f"{prefix}.*", cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
    try:
        slots = asyncio.Semaphore(_IN_FLIGHT)

        async def fetch(index: int, chunk: list[str]) -> None:
            async with slots:
                token = str(index)
                waiting[token] = future = loop.create_future()
                payload = json.dumps({"multi_last": chunk}).encode()
                await nc.publish(
                    f"$JS.API.DIRECT.GET.{log.spec.name}", payload, reply=f"{prefix}.{token}"
                )
                try:
                    await asyncio.wait_for(future, log.timeout)
                except TimeoutError:
                    raise ServerError(f"direct get timed out at {log.url}") from None

        await asyncio.gather(*(fetch(i, chunk) for i, chunk in enumerate(chunks)))
    finally:
        await sub.unsubscribe()
    return found
