"""``SiteFeed`` (pure parts): a revoked site is neither followed nor read, and a site whose
follow fails is read the one-shot way instead (a role that may not make consumers)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from events.task import Task
from registry.discovery.crosssite import SiteTasks
from registry.discovery.endpoints import Selectable
from registry.discovery.sitefeed import SiteFeed
from registry.errors import PermissionDenied
from registry.log.membership import MembershipLog
from registry.log.reader import Item

ONCE = Task(namespace="shop", name="web-1", labels={"app": "web"}, address="10.1.0.1")


class _Refusing:
    """A site's history whose follow the server refuses (as a tenant's would be)."""

    followed = 0

    async def follow(self, filter_subject: str) -> AsyncGenerator[Item, None]:
        type(self).followed += 1
        raise PermissionDenied("create a consumer", "not allowed")
        yield  # (an async generator)


async def test_a_failed_follow_is_read_once_and_a_revoked_site_not_at_all() -> None:
    asked: list[str] = []

    async def leases() -> Sequence[SiteTasks]:
        return [SiteTasks("east", "live", 0.5), SiteTasks("west", "revoked", 99.0)]

    async def history(site: str) -> MembershipLog:
        return _Refusing()  # type: ignore[return-value]  # (follow alone is used)

    async def read_once(site: str) -> tuple[Selectable, ...]:
        asked.append(site)
        return (ONCE,)

    feed = SiteFeed(leases, history, read_once)
    try:
        east, west = await feed.read()
        assert (east.site, east.tasks) == ("east", (ONCE,))
        assert (west.site, west.state, west.tasks) == ("west", "revoked", ())
        assert asked == ["east"]
        await feed.read()  # the follow is not tried again at once (its retry waits)
        assert _Refusing.followed == 1 and asked == ["east", "east"]
    finally:
        await feed.close()
