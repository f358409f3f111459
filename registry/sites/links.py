"""Setting a site up, and reading what the hub hears of its sites (the I/O of sites).

Everything here is JetStream API requests over a ``Session``: creating the site's mirror
and the hub's sourced views (``events.sites``), and reading the views' stream info, whose
``sources[].active`` a client can read with the JetStream API alone (the leaf connection
state of ``/leafz`` needs the server's monitoring port, which clients do not have).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.sites import (
    METADATA_PREFIX,
    SITE_MEMBERSHIP_PREFIX,
    SITE_TASKS_PREFIX,
    MirrorOf,
    api_prefix,
    membership_view,
    mirror_of,
    probe_reply_prefix,
    service_mirror,
    tasks_view,
)
from events.stream import STREAM_NAME, StreamSpec
from registry.errors import InvalidInput, ServerError
from registry.jetstream import connect
from registry.jetstream.connection import ConnectionLost
from registry.jetstream.credentials import Credentials
from registry.jetstream.direct import parse_time_ns
from registry.jetstream.protocol import STREAM_NOT_FOUND, ApiError
from registry.jetstream.session import Session
from registry.sites.model import DEFAULT_LEASE_S, Heard, LeaseState, Site, lease_state

__all__ = [
    "HubReport",
    "SiteReport",
    "domain_of",
    "init_hub_views",
    "init_site_mirror",
    "reaches",
    "read_hub",
    "read_sites",
    "resume_views",
    "session",
]


@contextlib.asynccontextmanager
async def session(
    url: str, credentials: Credentials | None = None, *, long_lived: bool = False
) -> AsyncIterator[Session]:
    """A JetStream session at ``url``, closed at the end of the block: one-shot, or
    ``long_lived`` (reconnecting through a server restart, for ``skyctl site watch``)."""
    conn = await connect(url, credentials=credentials, long_lived=long_lived)
    opened = await Session.open(conn, 5.0, provisioning=True)
    try:
        yield opened
    finally:
        await opened.close()


async def domain_of(where: Session, role: str) -> str:
    """The JetStream domain of the server behind ``where``; a site and its hub each need
    one (their streams are reached across the leaf link by it)."""
    info = await where.api("$JS.API.INFO", None, f"ask the {role} for its JetStream domain")
    domain = info.get("domain")
    if not isinstance(domain, str) or not domain:
        raise ServerError(
            f"the {role} at {where.url} has no JetStream domain: give its server one "
            f"(jetstream {{ domain: ... }}, as cluster/sites/*.conf do)"
        )
    return domain


async def reaches(where: Session, domain: str, *, wait_s: float) -> bool:
    """Whether the server behind ``where`` reaches the JetStream of ``domain`` across its
    leaf link (a site the hub's, or the hub a site's), waiting up to ``wait_s`` for it.
    A mirror or source set up while the link is down waits 30 s before its server asks
    again (nats-server's ``srcConsumerWaitTime``), so setting up after the link is up
    saves that. The answer comes back on ``_SKYFLOW_LINK.<domain>.<token>``, which a
    secured hub lets cross (``events.sites.LINK_PROBE_PREFIX``), not on an inbox."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        if await _probe(where, domain, timeout=max(0.5, min(2.0, deadline - loop.time()))):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.2)


async def _probe(where: Session, domain: str, *, timeout: float) -> bool:
    """One ``$JS.<domain>.API.INFO`` request, answered on a probe subject of its own: True
    if that JetStream answered (neither "no responders", nor an error, nor silence)."""
    conn = where.conn
    reply = f"{probe_reply_prefix(domain)}.{secrets.token_hex(8)}"
    answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def on_answer(
        _subject: str, _reply: str, headers: Mapping[str, str] | None, data: bytes
    ) -> None:
        if answered.done():
            return
        if headers and headers.get("Status"):  # 503: nobody serves that domain's API
            answered.set_result(False)
            return
        try:
            answer = json.loads(data)
        except ValueError:
            answered.set_result(False)
            return
        answered.set_result(isinstance(answer, dict) and answer.get("error") is None)

    try:
        subscription = await conn.subscribe(reply, on_answer)
    except ConnectionLost:
        return False
    try:
        await conn.publish(f"{api_prefix(domain)}.INFO", b"", reply=reply)
        async with asyncio.timeout(timeout):
            return await answered
    except (TimeoutError, ConnectionLost):
        return False
    finally:
        with contextlib.suppress(ConnectionLost):
            await subscription.unsubscribe()


async def _info(where: Session, name: str) -> dict[str, Any] | None:
    try:
        return await where.stream_info(name)
    except ApiError as exc:
        if exc.err_code == STREAM_NOT_FOUND:
            return None
        raise


async def init_site_mirror(
    site_session: Session,
    site: str,
    hub_domain: str,
    hub_url: str,
    spec: StreamSpec,
    lease_s: float = DEFAULT_LEASE_S,
) -> str:
    """Make the site's ``SKYFLOW_SERVICES`` a mirror of the hub's log; one line saying
    what was done. A site that already keeps a log of its own is refused, never replaced:
    its events would be lost."""
    have = await _info(site_session, STREAM_NAME)
    if have is None:
        config = service_mirror(site, hub_domain, hub_url, spec, lease_s)
        await site_session.api(
            f"$JS.API.STREAM.CREATE.{STREAM_NAME}", config, f"create the mirror {STREAM_NAME}"
        )
        return f"stream {STREAM_NAME} created: a mirror of the hub's log (domain {hub_domain})"
    mirrored = mirror_of(dict(have.get("config") or {}))
    if mirrored is None:
        raise InvalidInput(
            "site",
            site,
            f"the server at {site_session.url} keeps a service log of its own "
            f"({STREAM_NAME}); a site mirrors the hub's: set the site up on a new server",
        )
    if mirrored.site == site and mirrored.hub_domain == hub_domain:
        wanted = service_mirror(site, hub_domain, hub_url, spec, lease_s)["metadata"]
        current = dict(have.get("config") or {})
        if _without_server_keys("metadata", current.get("metadata")) != wanted:
            current["metadata"] = {**dict(current.get("metadata") or {}), **wanted}
            await site_session.api(
                f"$JS.API.STREAM.UPDATE.{STREAM_NAME}", current, f"update {STREAM_NAME}"
            )
            return f"stream {STREAM_NAME} updated: a mirror of the hub's log (domain {hub_domain})"
    else:
        raise InvalidInput(
            "site",
            site,
            f"the server at {site_session.url} is already site {mirrored.site}, "
            f"mirroring the hub of domain {mirrored.hub_domain}",
        )
    return f"stream {STREAM_NAME} exists: a mirror of the hub's log (domain {hub_domain})"


async def init_hub_views(hub_session: Session, site: Site, history_s: int) -> list[str]:
    """Create (or bring up to date) the hub's two views of ``site``, its history's kept
    ``history_s`` (as long as the site keeps its own); a line for each."""
    lines = []
    for config in (
        tasks_view(site.name, site.domain, site.record()),
        membership_view(site.name, site.domain, site.record(), history_s),
    ):
        name = config["name"]
        have = await _info(hub_session, name)
        if have is None:
            await hub_session.api(f"$JS.API.STREAM.CREATE.{name}", config, f"create {name}")
            action = "created"
        else:
            current = dict(have.get("config") or {})
            changed = {
                key: value
                for key, value in config.items()
                if key in ("sources", "metadata", "description", "max_age", "max_bytes")
                and _without_server_keys(key, current.get(key)) != value
            }
            if changed:
                current.update(changed)
                await hub_session.api(f"$JS.API.STREAM.UPDATE.{name}", current, f"update {name}")
                action = "updated"
            else:
                action = "exists"
        (transform,) = config["sources"][0]["subject_transforms"]
        lines.append(f"stream {name} {action} at the hub: {transform['dest']}")
    return lines


async def resume_views(hub_session: Session, site: str) -> list[str]:
    """Re-assert the hub's views of ``site`` (``registry.sites.keeper`` says when): each
    updated without its source, then with it again, so its source is set up at once and
    resumes from the last sequence the view holds; the names of the views resumed. A view
    missing (deleted since it was read) is passed over."""
    resumed = []
    for prefix in (SITE_TASKS_PREFIX, SITE_MEMBERSHIP_PREFIX):
        name = f"{prefix}{site}"
        have = await _info(hub_session, name)
        if have is None:
            continue
        config = dict(have.get("config") or {})
        if not config.get("sources"):
            continue  # nothing to resume (a view whose source was removed by hand)
        for update in ({**config, "sources": []}, config):
            await hub_session.api(
                f"$JS.API.STREAM.UPDATE.{name}", update, f"resume {name} (update it)"
            )
        resumed.append(name)
    return resumed


def _without_server_keys(key: str, value: object) -> object:
    """A setting as the registry wrote it: without what the server adds to metadata
    (``_nats.*``) and to each source (an empty ``deliver``)."""
    if key == "metadata" and isinstance(value, dict):
        return {k: v for k, v in value.items() if not str(k).startswith("_nats.")}
    if key == "sources" and isinstance(value, list):
        cleaned = []
        for source in value:
            if isinstance(source, dict):
                source = dict(source)
                external = source.get("external")
                if isinstance(external, dict):
                    source["external"] = {k: v for k, v in external.items() if v != ""}
            cleaned.append(source)
        return cleaned
    return value


@dataclass(frozen=True)
class SiteReport:
    """One site as the hub hears it, at ``at``."""

    site: Site
    heard: tuple[Heard, ...]  # one per view stream
    newest: datetime | None  # when the newest message the hub holds from the site arrived
    at: datetime

    @property
    def silent_s(self) -> float | None:
        """Since the hub last heard from the site on every one of its views: the staler
        view's silence (None while any view has never heard). Each view resumes on its
        own after a cut (measured: the copy of live tasks 0.2 s after a heal, the copy of
        the history 10.2 s), and the hub's answers come from the history: a site is only
        as current as its least current view."""
        known = [h.silent_s for h in self.heard]
        if not known or any(silent is None for silent in known):
            return None
        return max(silent for silent in known if silent is not None)

    @property
    def unheard_s(self) -> float | None:
        """How long the hub has gone without a word on some view: the staler view's
        silence, or, for a view never heard, since the hub began to listen (it was
        made)."""
        waits = [h.silent_s if h.silent_s is not None else h.listening_s for h in self.heard]
        known = [wait for wait in waits if wait is not None]
        if not known or len(known) < len(waits):
            return None
        return max(known)

    @property
    def lag(self) -> int:
        return sum(h.lag for h in self.heard)

    @property
    def state(self) -> LeaseState:
        return lease_state(self.site, self.unheard_s)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{h.stream}: {h.error}" for h in self.heard if h.error)


@dataclass(frozen=True)
class HubReport:
    """What a site hears of its hub: how long since its mirror of the hub's log last
    heard from the hub, and how far it got."""

    mirror: MirrorOf
    silent_s: float | None  # None: never
    lag: int
    last_seq: int
    lease_s: float

    @property
    def link_up(self) -> bool:
        return self.silent_s is not None and self.silent_s < self.lease_s


async def read_hub(site_session: Session) -> HubReport:
    """The site's view of its hub, from its mirror's stream info (``NotASite`` if the
    server at ``site_session`` is none)."""
    info = await _info(site_session, STREAM_NAME)
    config = dict(info.get("config") or {}) if info else {}
    mirrored = mirror_of(config)
    if info is None or mirrored is None:
        raise InvalidInput(
            "--server",
            site_session.url,
            "is no site (its service log is no mirror of a hub's): skyctl site init sets one up",
        )
    mirror = info.get("mirror") if isinstance(info.get("mirror"), dict) else {}
    assert isinstance(mirror, dict)
    active = mirror.get("active")
    lag = mirror.get("lag")
    state = info.get("state") if isinstance(info.get("state"), dict) else {}
    assert isinstance(state, dict)
    last_seq = state.get("last_seq")
    metadata = dict(config.get("metadata") or {})
    lease = Site.from_metadata({**metadata, f"{METADATA_PREFIX}domain": "-"})
    return HubReport(
        mirrored,
        active / 1e9 if isinstance(active, int) and active >= 0 else None,
        lag if isinstance(lag, int) and lag > 0 else 0,
        last_seq if isinstance(last_seq, int) else 0,
        lease.lease_s if lease is not None else DEFAULT_LEASE_S,
    )


async def _stream_names(where: Session, prefixes: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    offset = 0
    while True:
        answer = await where.api("$JS.API.STREAM.NAMES", {"offset": offset}, "list streams")
        page = [n for n in answer.get("streams") or [] if isinstance(n, str)]
        names += [n for n in page if n.startswith(prefixes)]
        offset += len(page)
        total = answer.get("total")
        if not page or not isinstance(total, int) or offset >= total:
            return sorted(names)


async def read_sites(hub_session: Session, names: tuple[str, ...] = ()) -> list[SiteReport]:
    """Every site the hub sources (or those named), as its views' stream info says."""
    found: dict[str, tuple[Site, list[Heard], list[datetime]]] = {}
    now = datetime.now(UTC)
    prefixes = (SITE_TASKS_PREFIX, SITE_MEMBERSHIP_PREFIX)
    # Named sites are read by their streams' names: no listing (which a restricted user
    # may not do) is needed.
    streams = (
        [f"{prefix}{name}" for name in names for prefix in prefixes]
        if names
        else await _stream_names(hub_session, prefixes)
    )
    for stream in streams:
        info = await _info(hub_session, stream)
        if info is None:
            continue  # deleted since it was listed
        config = dict(info.get("config") or {})
        site = Site.from_metadata(dict(config.get("metadata") or {}))
        if site is None or (names and site.name not in names):
            continue
        entry = found.setdefault(site.name, (site, [], []))
        entry[1].append(_heard(stream, info, now))
        state = info.get("state")
        stamp = state.get("last_ts") if isinstance(state, dict) else None
        newest = _time(stamp) if state and state.get("messages") else None
        if newest is not None:
            entry[2].append(newest)
    return [
        SiteReport(site, tuple(heard), max(stamps) if stamps else None, now)
        for site, heard, stamps in (found[name] for name in sorted(found))
    ]


def _heard(stream: str, info: dict[str, Any], now: datetime) -> Heard:
    created = _time(info.get("created"))
    since = (now - created).total_seconds() if created is not None else None
    sources = [s for s in info.get("sources") or [] if isinstance(s, dict)]
    if not sources:
        return Heard(stream, None, 0, "no source (not yet set up, or removed)", since)
    source = sources[0]
    active = source.get("active")
    silent = active / 1e9 if isinstance(active, int) and active >= 0 else None
    lag = source.get("lag")
    error = source.get("error")
    said = None
    if isinstance(error, dict):
        said = str(error.get("description") or error)
    return Heard(stream, silent, lag if isinstance(lag, int) and lag > 0 else 0, said, since)


def _time(stamp: object) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        ns = parse_time_ns(stamp)
    except ValueError:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC) if ns > 0 else None
