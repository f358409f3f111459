"""Reader streams: a mirror of each registry stream per non-admin user, so that what one
user's reads hold on the server is bounded by the server, and no one else's.

Every ordered read is a JetStream consumer, and NATS bounds consumers per stream (and per
account), never per user: a user allowed to create consumers on ``SKYFLOW_SERVICES`` can
create the thousand that stop everyone's reads, and can name or redefine anyone's. So a
user that is not admin reads through mirrors of its own (``SKYFLOW_SERVICES_FOR_<user>``,
``SKYFLOW_TASKS_FOR_<user>``, made by ``skyctl init --reader USER``), each allowing
``READER_MAX_CONSUMERS`` consumers; its permissions name only those for consumers, so
whatever it does to them (any number, any name, any threshold the limits allow) it does to
its own reads. Direct gets (``get``, ``describe``) stay on the streams themselves: they
hold nothing on the server.

A mirror keeps the stream's sequence numbers, and the read waits until the mirror holds
everything the stream held when the read began, so a read through it is as fresh as one
of the stream (a write acknowledged before the read is in it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from events.stream import READER_MAX_CONSUMERS, consumer_limits, reader_stream
from registry.errors import PermissionDenied, ServerError
from registry.jetstream.protocol import STREAM_NOT_FOUND, ApiError
from registry.jetstream.session import Session

__all__ = ["READER_MAX_CONSUMERS", "reader_config", "reader_problems", "stream_to_read"]

_WAIT_S = 10.0


def reader_config(origin: dict[str, Any], user: str) -> dict[str, Any]:
    """A mirror of the stream ``origin`` (its configuration) for ``user``."""
    name = str(origin["name"])
    config: dict[str, Any] = {
        "name": reader_stream(name, user),
        "description": f"SkyFlow service registry: {name}, as user {user} reads it",
        "mirror": {"name": name},
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "num_replicas": origin.get("num_replicas") or 1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": origin.get("max_age") or 0,
        "max_msgs_per_subject": origin.get("max_msgs_per_subject") or -1,
        "max_msg_size": origin.get("max_msg_size") or -1,
        "max_consumers": READER_MAX_CONSUMERS,
        "consumer_limits": consumer_limits(),
        "deny_delete": True,
        "deny_purge": True,
    }
    if origin.get("allow_msg_ttl"):
        config["allow_msg_ttl"] = True  # heartbeats expire in the mirror as in the stream
    return config


def reader_problems(config: dict[str, Any], origin: str) -> list[str]:
    """What would make a reader stream show something other than ``origin``."""
    mirror = config.get("mirror")
    problems: list[str] = []
    if not isinstance(mirror, dict) or mirror.get("name") != origin:
        problems.append(f"it does not mirror {origin}")
    elif any(mirror.get(k) for k in ("filter_subject", "subject_transforms", "external")):
        problems.append(f"it mirrors only part of {origin}, or from elsewhere")
    for limit in ("max_msgs", "max_bytes"):
        if config.get(limit) not in (None, -1, 0):
            problems.append(f"{limit} {config.get(limit)} would trim it")
    return problems


async def stream_to_read(session: Session, origin: str) -> str:
    """The stream this session's ordered reads of ``origin`` use: this user's reader stream
    if it has one, caught up with ``origin`` as of now; else ``origin`` itself."""
    user = session.user_id
    if user is None:
        return origin
    mirror = reader_stream(origin, user)
    known = session.readers.get(origin)
    if known is None:
        try:
            info = await session.stream_info(mirror)
        except (ApiError, PermissionDenied) as exc:
            if isinstance(exc, ApiError) and exc.err_code != STREAM_NOT_FOUND:
                raise
            session.readers[origin] = origin
            return origin
        config = info.get("config")
        problems = reader_problems(config if isinstance(config, dict) else {}, origin)
        if problems:
            raise ServerError(
                f"refusing reader stream {mirror}: {'; '.join(problems)} "
                f"(an admin runs skyctl init --reader {user} after deleting it)"
            )
        session.readers[origin] = known = mirror
    if known != origin:
        await _caught_up(session, origin, known)
    return known


async def _caught_up(session: Session, origin: str, mirror: str) -> None:
    """Wait until ``mirror`` holds every message ``origin`` held a moment ago."""
    state = (await session.stream_info(origin, retry_for=session.timeout)).get("state") or {}
    want = state.get("last_seq") or 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WAIT_S
    pause = 0.002
    while True:
        have = ((await session.stream_info(mirror)).get("state") or {}).get("last_seq") or 0
        if have >= want:
            return
        if loop.time() > deadline:
            raise ServerError(
                f"reader stream {mirror} is behind {origin} (at {have}, {origin} at {want}) "
                f"after {_WAIT_S:g} s: is its mirror running? (nats stream info {mirror})"
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)
