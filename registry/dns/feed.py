"""The zone kept equal to what the Resolver knows: every change pushed in as it comes.

``resolver.everything()`` hands over every service's endpoints and every live task once,
then each change; this applies them to the zone, so a task the server forgets leaves the
answers the moment it leaves the Resolver (no polling, no TTL of our own). While the
server is unreachable nothing arrives and the zone keeps the last known answers; when it
is back, everything is read again and replaces them in one step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from registry.discovery.follower import Discovered, EndpointsChanged, TasksChanged
from registry.discovery.resolver import Resolver
from registry.dns.zone import Zone

__all__ = ["feed"]


async def feed(
    resolver: Resolver,
    zone: Zone,
    *,
    on_loaded: Callable[[], None] | None = None,
    on_conflict: Callable[[str], None] | None = None,
) -> None:
    """Keep ``zone`` current until cancelled; ``on_loaded`` once it holds everything;
    ``on_conflict`` with each new name written in spellings that differ only in case
    (the zone serves one of them at most). Raises what the first read raises (nothing
    was known yet to keep serving)."""
    reported: set[str] = set()
    seen = -1
    async for item in resolver.everything():
        match item:
            case Discovered():
                first = not zone.loaded
                zone.replace(
                    [found.endpoints for found in item.services],
                    item.tasks,
                    {
                        found.key: found.record.service.cluster_ip
                        for found in item.services
                        if found.record.service.cluster_ip
                    },
                    {
                        found.key: found.record.service.external_name
                        for found in item.services
                        if found.record.service.external_name
                    },
                )
                if first and on_loaded is not None:
                    on_loaded()
            case EndpointsChanged():
                gone = item.kind == "DELETED"
                found = item.service
                zone.set_service(
                    found.key,
                    None if gone else found.endpoints,
                    None if gone else found.record.service.cluster_ip,
                    None if gone else found.record.service.external_name,
                )
            case TasksChanged():
                for change in item.changes:
                    zone.set_task(change.key, change.after)
            case _:
                assert_never(item)
        if on_conflict is not None and zone.conflicts_changed != seen:
            seen = zone.conflicts_changed
            now = set(zone.conflicts)
            for conflict in sorted(now - reported):
                on_conflict(conflict)
            reported = now
