"""The membership stream over JetStream (``registry.log.membership.MembershipLog``).

Time travel is one multi-last direct get as of a moment (``up_to_time``), answered from
the store by any replica without a consumer: the cost follows the tasks of the namespace
asked about, not the transitions recorded. The server names at most 1024 subjects per
multi-last request; past that the subjects are listed (stream info, paged) and asked
for in chunks of 1024.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

from events.codec import DecodeError
from events.membership import MembershipSpec, decode_membership
from registry.errors import RegistryError, ServerError
from registry.jetstream.direct import (
    MULTI_LAST_MAX,
    TooManyResults,
    direct_batches,
    format_time_ns,
    parse_time_ns,
)
from registry.jetstream.protocol import STREAM_NOT_FOUND, ApiError
from registry.jetstream.session import Session
from registry.log.reader import Item
from registry.log.stored import StoredMessage

__all__ = ["JetStreamMembership", "NoSuchSite", "NotRecorded"]

_BATCH = 1000
_ALL = 10_000_000


class NotRecorded(ServerError):
    """Nothing records membership here yet (no ``SKYFLOW_MEMBERSHIP`` stream)."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"no membership history at {url}: nothing records it yet (run 'skyctl record' "
            "beside the registry; it keeps who served each service from then on)"
        )


class NoSuchSite(RegistryError):
    """The hub holds no copy of the site asked about (no ``skyctl site init`` for it): a
    refusal, as a service not found is (exit code 1, as ``get endpoints --site``'s)."""

    def __init__(self, url: str, stream: str) -> None:
        super().__init__(
            f"no site history {stream} at {url}: no such site here (skyctl get sites lists "
            "them; skyctl site init sets one up)"
        )


class JetStreamMembership:
    """A membership history: the registry's own, or (``prefix``, read only) the hub's
    copy of a site's, whose subjects are the site's under ``site.<name>.``; every read
    takes and gives the site's own subjects, so the fold is the same."""

    def __init__(
        self,
        session: Session,
        spec: MembershipSpec,
        config: dict[str, Any],
        prefix: str = "",
    ) -> None:
        self._session = session
        self.spec = spec
        self.prefix = prefix
        max_age = config.get("max_age")
        self.retention_s = (
            max_age // 1_000_000_000 if isinstance(max_age, int) and max_age > 0 else 0
        )

    @classmethod
    async def open(
        cls, session: Session, spec: MembershipSpec, *, create: bool, prefix: str = ""
    ) -> JetStreamMembership:
        if create:
            config, _ = await session.ensure_stream(
                spec.name, spec.config(), f"create stream {spec.name}"
            )
            return cls(session, spec, config)
        try:
            info = await session.stream_info(spec.name)
        except ApiError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                if prefix:
                    raise NoSuchSite(session.url, spec.name) from None
                raise NotRecorded(session.url) from None
            raise
        return cls(session, spec, dict(info.get("config") or {}), prefix)

    def _ours(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        """Messages as the site recorded them: its subjects, without the hub's prefix, and
        stamped with the moment each transition happened at the site. The hub stores a
        sourced message when it arrives, which after a cut is long after it happened."""
        if not self.prefix:
            return messages
        return [
            replace(m, subject=m.subject.removeprefix(self.prefix), time_ns=_happened_ns(m))
            for m in messages
            if m.subject.startswith(self.prefix)
        ]

    async def append(self, subject: str, data: bytes, *, expected_last_subject_seq: int) -> int:
        from events.stamps import new_event_id

        if self.prefix:
            raise ServerError(f"{self.spec.name} is a site's history, copied: it is read only")
        return await self._session.append(
            self.spec.name,
            subject,
            data,
            msg_id=new_event_id(),
            expected_last_subject_seq=expected_last_subject_seq,
        )

    async def last(self, subject: str) -> StoredMessage | None:
        found = await self._session.last(self.spec.name, self.prefix + subject)
        return None if found is None else self._ours([found])[0]

    async def as_of(self, filter_subject: str, time_ns: int | None = None) -> list[StoredMessage]:
        if self.prefix and time_ns is not None:
            # A site's copy: its stored times are arrivals at the hub, so "as of" a
            # moment is decided by when each transition happened, reading them all (the
            # cost follows the transitions kept, not the tasks). Now needs no times: the
            # copy keeps each task's transitions in the site's order, so its last is the
            # task's state, and the multi-last read below answers as for our own.
            last: dict[str, StoredMessage] = {}
            for message in await self.history(filter_subject, limit=_ALL):
                if time_ns is None or message.time_ns <= time_ns:
                    last[message.subject] = message
            return list(last.values())
        query: dict[str, object] = {"multi_last": [self.prefix + filter_subject]}
        if time_ns is not None:
            query["up_to_time"] = format_time_ns(time_ns)
        try:
            (found,) = await self._direct([query])
            return self._ours(found)
        except TooManyResults:
            pass
        subjects = await self._subjects(self.prefix + filter_subject)
        chunks = [subjects[i : i + MULTI_LAST_MAX] for i in range(0, len(subjects), MULTI_LAST_MAX)]
        queries = [{**query, "multi_last": chunk} for chunk in chunks]
        return self._ours([m for replies in await self._direct(queries) for m in replies])

    async def history(
        self, subject: str, *, since_ns: int | None = None, limit: int = 1000
    ) -> list[StoredMessage]:
        found: list[StoredMessage] = []
        subject = self.prefix + subject
        query: dict[str, object] = {"next_by_subj": subject, "batch": _BATCH}
        if since_ns is not None:
            query["start_time"] = format_time_ns(since_ns)
        else:
            query["seq"] = 1
        while True:
            (replies,) = await self._direct([query])
            found.extend(replies)
            if len(found) > limit:
                del found[: len(found) - limit]
            if len(replies) < _BATCH:
                return self._ours(found)
            query = {"next_by_subj": subject, "batch": _BATCH, "seq": replies[-1].seq + 1}

    async def follow(self, filter_subject: str) -> AsyncGenerator[Item, None]:
        from registry.jetstream.tail import Tail
        from registry.log.reader import Start

        subjects = [self.prefix + filter_subject]
        async with Tail(self._session, self.spec.name, subjects, Start("last_per_subject")) as tail:
            async for item in tail:
                if isinstance(item, StoredMessage):
                    for message in self._ours([item]):  # (none if not under the prefix)
                        yield message
                else:
                    yield item

    async def first_time_ns(self) -> int | None:
        info = await self._session.stream_info(self.spec.name)
        state = info.get("state") or {}
        if not isinstance(state, dict) or not state.get("messages"):
            return None
        stamp = state.get("first_ts")
        try:
            return parse_time_ns(stamp) if isinstance(stamp, str) else None
        except ValueError:
            return None

    async def _direct(self, queries: list[dict[str, object]]) -> list[list[StoredMessage]]:
        session = self._session
        return await session.exchange(
            direct_batches(session.conn, self.spec.name, queries, session.timeout),
            "read the membership history",
            "$JS.API.DIRECT.GET.",
        )

    async def _subjects(self, filter_subject: str) -> list[str]:
        """Every subject matching ``filter_subject`` that holds a message (paged)."""
        subjects: list[str] = []
        offset = 0
        while True:
            info = await self._session.api(
                f"$JS.API.STREAM.INFO.{self.spec.name}",
                {"subjects_filter": filter_subject, "offset": offset},
                "list the membership history's tasks",
            )
            state = info.get("state") or {}
            page = state.get("subjects") if isinstance(state, dict) else None
            if not isinstance(page, dict) or not page:
                return sorted(subjects)
            subjects.extend(str(s) for s in page)
            total = info.get("total")
            offset += len(page)
            if not isinstance(total, int) or offset >= total:
                return sorted(subjects)


def _happened_ns(message: StoredMessage) -> int:
    """When a transition happened (its ``at``), or when it was stored if unreadable."""
    try:
        event = decode_membership(message.data)
    except DecodeError:
        return message.time_ns
    return int(event.at.timestamp() * 1_000_000) * 1000
