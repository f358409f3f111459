"""The baselines: what plain nats-py does on the same server, in the same run.

Baselines that write use streams of their own (``BENCH``, subjects ``bench.>``; and
``BENCH_TASKS``, subjects ``benchtask.>``, set up as the liveness stream is), never the
registry's; the ones that only read use the registry's stream.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, StorageType, StreamConfig

from events.liveness import TasksSpec

__all__ = [
    "BENCH_STREAM",
    "DIRECT_GET_SCRIPT",
    "FLOOR_SCRIPT",
    "HEARTBEAT_SCRIPT",
    "ONE_SHOT_SCRIPT",
    "TTL_STREAM",
    "TTL_SUBJECTS",
    "Arrivals",
    "Markers",
    "core_subscription",
    "delete_stream",
    "ensure_bench_stream",
    "ensure_bench_stream_sync",
    "ensure_ttl_stream",
    "jetstream_subscription",
    "last_sequence",
    "marker_subscription",
    "ordered_read",
    "pipelined_publish",
]

BENCH_STREAM = "BENCH"
# The heartbeat baselines' stream: the liveness stream's settings (per-message TTL, one
# message per subject, delete markers, asynchronous persistence) on subjects of its own.
TTL_STREAM = "BENCH_TASKS"
TTL_SUBJECTS = "benchtask.>"

# A fresh process that imports nats-py and connects as skyctl would (the same NATS_URL,
# with several servers, user/password, a CA for TLS); then, as ``ONE_SHOT_SCRIPT``,
# publishes one JetStream message and exits, or, as ``DIRECT_GET_SCRIPT``, reads one
# service's last event by a direct get (what ``skyctl get service NAME`` asks the server),
# decodes it with msgpack and exits (argument: SUBJECT).
_ONE_SHOT = """
import asyncio, os, sys
import msgpack
import nats

async def main() -> None:
    options = {}
    if os.environ.get("NATS_USER"):
        options.update(user=os.environ["NATS_USER"], password=os.environ["NATS_PASSWORD"])
    if os.environ.get("NATS_CA"):
        import ssl
        options["tls"] = ssl.create_default_context(cafile=os.environ["NATS_CA"])
    nc = await nats.connect(os.environ["NATS_URL"].split(","), dont_randomize=True, **options)
    js = nc.jetstream()
    %s
    await nc.close()

asyncio.run(main())
"""
ONE_SHOT_SCRIPT = _ONE_SHOT % 'await js.publish("bench.oneshot", b"x" * 250)'
DIRECT_GET_SCRIPT = _ONE_SHOT % (
    'msgpack.unpackb((await js.get_last_msg("SKYFLOW_SERVICES", sys.argv[1], direct=True)).data)'
)


# The floor under any one-shot command that reads the log with the event models: a fresh
# process that imports asyncio and the models, connects with the wire client, reads one
# service's last event and decodes it. No CLI, no registry logic, no stream check.
FLOOR_SCRIPT = """
import asyncio, os, sys
from events import decode
from registry.jetstream import connect

async def main() -> None:
    conn = await connect(os.environ["NATS_URL"], long_lived=False)
    reply = await conn.request(
        "$JS.API.DIRECT.GET.SKYFLOW_SERVICES." + sys.argv[1], timeout=2
    )
    decode(reply.data)
    await conn.close()

asyncio.run(main())
"""


# A fresh process that keeps ``COUNT`` subjects alive the way the bare server allows:
# each is published with ``Nats-TTL: TTL`` and published again every TTL / 3 seconds,
# spread evenly over that interval in rounds (about ten a second); the last message of
# each round is a request, whose acknowledgement confirms the round (and any error in it
# ends the process). It prints "ready" once every subject is stored, then runs until
# killed. Arguments: SUBJECT_PREFIX COUNT TTL BODY_BYTES.
HEARTBEAT_SCRIPT = """
import asyncio, json, os, sys
import nats

async def main() -> None:
    prefix, count, ttl, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    nc = await nats.connect(os.environ["NATS_URL"])
    body, headers = b"x" * size, {"Nats-TTL": str(ttl)}
    subjects = [f"{prefix}.{i}" for i in range(count)]

    async def send(chunk: list[str]) -> None:
        for subject in chunk[:-1]:
            await nc.publish(subject, body, headers=headers)
        reply = await nc.request(chunk[-1], body, headers=headers, timeout=5)
        if "error" in json.loads(reply.data):
            sys.exit(f"heartbeat refused: {reply.data!r}")

    for i in range(0, count, 2000):
        await send(subjects[i : i + 2000])
    print("ready", flush=True)
    interval = ttl / 3
    rounds = max(1, min(count, round(interval / 0.1)))
    loop = asyncio.get_running_loop()
    started, n = loop.time(), 0
    while True:
        n += 1
        await asyncio.sleep(max(0.0, started + n * interval / rounds - loop.time()))
        k = n % rounds
        chunk = subjects[k * count // rounds : (k + 1) * count // rounds]
        if chunk:
            await send(chunk)

asyncio.run(main())
"""


def _options(env: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if env.get("NATS_USER"):
        options.update(user=env["NATS_USER"], password=env.get("NATS_PASSWORD", ""))
    if env.get("NATS_CA"):
        options["tls"] = ssl.create_default_context(cafile=env["NATS_CA"])
    return options


async def ensure_bench_stream(
    url: str, env: Mapping[str, str] | None = None, replicas: int = 1
) -> None:
    nc = await nats.connect(url.split(","), **_options(env or {}))
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name=BENCH_STREAM,
                subjects=["bench.>"],
                storage=StorageType.FILE,
                num_replicas=replicas,
            )
        )
    finally:
        await nc.close()


def ensure_bench_stream_sync(env: Mapping[str, str], replicas: int = 1) -> None:
    """The baseline's own stream on a mode's server(s), as that mode's clients connect."""
    asyncio.run(ensure_bench_stream(env["NATS_URL"], env, replicas))


async def pipelined_publish(
    url: str, messages: Sequence[tuple[str, bytes]], concurrency: int
) -> float:
    """Seconds to publish every message with ``js.publish``, ``concurrency`` in flight."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        items = iter(messages)

        async def worker() -> None:
            for subject, payload in items:
                await js.publish(subject, payload)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started
    finally:
        await nc.close()


async def ordered_read(url: str, stream: str, subjects: str, count: int) -> float:
    """Seconds for an ordered push consumer to deliver and msgpack-decode ``count`` messages."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        done = asyncio.Event()
        seen = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal seen
            msgpack.unpackb(msg.data)
            seen += 1
            if seen >= count:
                done.set()

        started = time.perf_counter()
        sub = await js.subscribe(
            subjects,
            stream=stream,
            ordered_consumer=True,
            cb=on_msg,
            pending_msgs_limit=count + 1000,
            pending_bytes_limit=1 << 34,
        )
        await asyncio.wait_for(done.wait(), timeout=max(60.0, count / 5_000))
        elapsed = time.perf_counter() - started
        await sub.unsubscribe()
        return elapsed
    finally:
        await nc.close()


class Arrivals:
    """A subscription that notes when each subject's first message arrived."""

    def __init__(self, nc: NatsClient) -> None:
        self.arrived: dict[str, float] = {}
        self._nc = nc

    async def on_msg(self, msg: Msg) -> None:
        self.arrived.setdefault(msg.subject, time.perf_counter())

    async def close(self) -> None:
        await self._nc.close()


async def core_subscription(url: str, subjects: str) -> Arrivals:
    """Plain core NATS: the message as the server routes it, before any storage."""
    arrivals = Arrivals(await nats.connect(url))
    await arrivals._nc.subscribe(subjects, cb=arrivals.on_msg)
    await arrivals._nc.flush()
    return arrivals


async def jetstream_subscription(url: str, stream: str, subjects: str) -> Arrivals:
    """A raw JetStream push consumer (new messages only): delivery after storage."""
    arrivals = Arrivals(await nats.connect(url))
    js = arrivals._nc.jetstream()
    await js.subscribe(
        subjects, stream=stream, cb=arrivals.on_msg, deliver_policy=DeliverPolicy.NEW
    )
    await arrivals._nc.flush()
    return arrivals


# -- the liveness baselines ---------------------------------------------------------------


async def ensure_ttl_stream(url: str) -> None:
    """``TTL_STREAM``, configured as ``TasksSpec`` configures the liveness stream."""
    config = {
        **TasksSpec(name=TTL_STREAM).config(),
        "subjects": [TTL_SUBJECTS],
        "description": "benchmark baseline: heartbeats with per-message TTL",
    }
    nc = await nats.connect(url)
    try:
        reply = await nc.request(
            f"$JS.API.STREAM.CREATE.{TTL_STREAM}", json.dumps(config).encode(), timeout=5
        )
        error = json.loads(reply.data).get("error")
        if error is not None:
            raise RuntimeError(f"cannot create {TTL_STREAM}: {error}")
    finally:
        await nc.close()


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


async def last_sequence(url: str, stream: str) -> int:
    """The stream's last sequence: one more for every message it stored (markers too)."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.last_seq)
    finally:
        await nc.close()


class Markers:
    """A JetStream push consumer noting when each subject's delete marker arrived (the
    server's word that the subject's last message expired)."""

    def __init__(self, nc: NatsClient) -> None:
        self.gone: dict[str, float] = {}
        self._nc = nc

    async def on_msg(self, msg: Msg) -> None:
        if msg.headers and "Nats-Marker-Reason" in msg.headers:
            self.gone.setdefault(msg.subject, time.perf_counter())

    async def close(self) -> None:
        await self._nc.close()


async def marker_subscription(url: str, stream: str, subjects: str) -> Markers:
    markers = Markers(await nats.connect(url))
    js = markers._nc.jetstream()
    await js.subscribe(subjects, stream=stream, cb=markers.on_msg, deliver_policy=DeliverPolicy.NEW)
    await markers._nc.flush()
    return markers
