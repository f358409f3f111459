"""Direct gets: the last message of one subject, or of many in a few round trips.

A direct get is answered by any replica straight from its store, without a consumer.
The batched form (``multi_last``, up to 1024 subjects per request) has no nats-py API, so
it is done by hand for both clients: one request, answered by one message per subject that
has any, then a ``204 EOB`` status (``404`` when none has). The stream must allow direct
gets, which the stream check demands.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from registry.errors import ServerError
from registry.jetstream.connection import Connection
from registry.log.stored import StoredMessage

__all__ = [
    "DIRECT_HEADERS",
    "MULTI_LAST_MAX",
    "TooManyResults",
    "before_many",
    "direct_batches",
    "format_time_ns",
    "last_many",
    "parse_time_ns",
    "stored_from_direct",
]

# The server refuses a multi_last request naming more subjects than this (413).
MULTI_LAST_MAX = 1024
_IN_FLIGHT = 4
_PLACES_IN_FLIGHT = 128  # one-subject requests: small answers, many at once
# Headers the server adds to a direct-get reply; the rest are the stored message's own.
DIRECT_HEADERS = frozenset(
    {
        "Nats-Stream",
        "Nats-Subject",
        "Nats-Sequence",
        "Nats-Time-Stamp",
        "Nats-Num-Pending",
        "Nats-Last-Sequence",
    }
)


class TooManyResults(ServerError):
    """A multi-last read whose filter matches more subjects than one request may name."""


def format_time_ns(time_ns: int) -> str:
    """Nanoseconds since the epoch as the server takes a time (RFC 3339, UTC, nanoseconds)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    head = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{nanos:09d}Z"


def parse_time_ns(stamp: str) -> int:
    """``2026-11-25T01:40:09.474459392Z`` -> nanoseconds since the epoch."""
    head, dot, frac = stamp.strip().rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    nanos = frac[:9].ljust(9, "0") if dot else "0"
    if not (nanos.isascii() and nanos.isdigit()):
        raise ValueError(f"bad time stamp {stamp!r}")
    return int(seconds) * 1_000_000_000 + int(nanos)


def stored_from_direct(headers: Mapping[str, str], data: bytes) -> StoredMessage:
    """A direct-get reply as the stored message it carries."""
    try:
        return StoredMessage(
            seq=int(headers["Nats-Sequence"]),
            subject=headers["Nats-Subject"],
            data=data,
            headers={k: v for k, v in headers.items() if k not in DIRECT_HEADERS},
            time_ns=parse_time_ns(headers["Nats-Time-Stamp"]),
        )
    except (KeyError, ValueError, OverflowError) as exc:
        raise ServerError(f"the server sent a malformed direct-get reply ({exc!r})") from None


async def last_many(
    conn: Connection, stream: str, subjects: Sequence[str], timeout: float
) -> dict[str, StoredMessage]:
    """The last message of each of ``subjects`` that has one, by subject."""
    unique = list(dict.fromkeys(subjects))
    chunks = [unique[i : i + MULTI_LAST_MAX] for i in range(0, len(unique), MULTI_LAST_MAX)]
    found: dict[str, StoredMessage] = {}
    for replies in await direct_batches(conn, stream, [{"multi_last": c} for c in chunks], timeout):
        for stored in replies:
            found[stored.subject] = stored
    return found


async def before_many(
    conn: Connection, stream: str, places: Sequence[tuple[str, int]], timeout: float
) -> dict[tuple[str, int], StoredMessage | None]:
    """For each ``(subject, seq)``, the message before ``seq`` on ``subject`` (None: there
    is none): a ``multi_last`` of one subject up to ``seq - 1``, many in flight. A place
    whose answer came from a replica that had not yet stored up to ``seq - 1`` (its
    ``Nats-UpTo-Sequence`` is lower) is left out: that answer could be an older message."""
    unique = list(dict.fromkeys(places))
    asked = [(subject, seq) for subject, seq in unique if seq > 1]
    queries = [{"multi_last": [subject], "up_to_seq": seq - 1} for subject, seq in asked]
    found: dict[tuple[str, int], StoredMessage | None] = {p: None for p in unique if p[1] <= 1}
    up_to: list[int | None] = [None] * len(queries)
    replies_of = await direct_batches(conn, stream, queries, timeout, _PLACES_IN_FLIGHT, up_to)
    for place, replies, reached in zip(asked, replies_of, up_to, strict=True):
        if reached is not None and reached < place[1] - 1:
            continue  # a replica behind the message: not an answer
        found[place] = next((m for m in replies if m.subject == place[0]), None)
    return found


async def direct_batches(
    conn: Connection,
    stream: str,
    queries: Sequence[Mapping[str, object]],
    timeout: float,
    in_flight: int = _IN_FLIGHT,
    up_to: list[int | None] | None = None,
) -> list[list[StoredMessage]]:
    """The replies to each of ``queries`` (multi-last or batch direct gets), in order;
    ``up_to`` gets each one's ``Nats-UpTo-Sequence`` (how far the answering server
    looked). ``TooManyResults`` when a multi-last filter matches too many subjects."""
    results: list[list[StoredMessage]] = [[] for _ in queries]
    if not queries:
        return results
    prefix = conn.new_inbox()
    waiting: dict[str, tuple[int, asyncio.Future[None]]] = {}
    loop = asyncio.get_running_loop()

    def on_msg(subject: str, _reply: str, headers: Mapping[str, str] | None, data: bytes) -> None:
        index, future = waiting.get(subject.rpartition(".")[2], (-1, None))
        if future is None or future.done():
            return
        headers = headers or {}
        status = headers.get("Status")
        try:
            if status is None:
                results[index].append(stored_from_direct(headers, data))
            elif status in ("204", "404"):  # end of batch; 404: none of them has a message
                reached = headers.get("Nats-UpTo-Sequence", "")
                if up_to is not None and reached.isascii() and reached.isdigit():
                    up_to[index] = int(reached)
                future.set_result(None)
            elif status == "413":
                raise TooManyResults(f"direct get failed: {status} too many subjects")
            else:
                description = headers.get("Description", "")
                raise ServerError(f"direct get failed: {status} {description}")
        except ServerError as exc:
            future.set_exception(exc)

    sub = await conn.subscribe(f"{prefix}.*", on_msg)
    try:
        slots = asyncio.Semaphore(in_flight)

        async def fetch(index: int, query: Mapping[str, object]) -> None:
            async with slots:
                token = str(index)
                future = loop.create_future()
                waiting[token] = (index, future)
                payload = json.dumps(query).encode()
                await conn.publish(
                    f"$JS.API.DIRECT.GET.{stream}", payload, reply=f"{prefix}.{token}"
                )
                try:
                    async with asyncio.timeout(timeout):  # (not wait_for: see pyproject)
                        await future
                except TimeoutError:
                    raise ServerError(f"direct get timed out at {conn.url}") from None
                finally:
                    del waiting[token]

        await asyncio.gather(*(fetch(i, query) for i, query in enumerate(queries)))
    finally:
        await sub.unsubscribe()
    return results
