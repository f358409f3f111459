"""When the hub should resume its views of a site by hand (pure; ``skyctl site watch`` is
the I/O around it).

After a cut, a view's sourcing may wait 30 s before it asks the site again: the request
to set up its source consumer that the server sent while the link was down is still
waiting for its answer (nats-server's ``srcConsumerWaitTime``), and the retry the server
makes when the leaf link comes back skips a source whose request is in flight
(``retryDisconnectedSyncConsumers``). Measured: 17-40 s from a heal to the hub being
current in about half of the 16 s and 40 s cuts. Re-asserting the view (a stream update
without the source, then with it again, resuming from the last sequence the view holds)
sets the source up at once: 0.3-0.5 s in every cut measured, nothing doubled
(``docs/benchmarks.md``).

The rule: re-assert a site's views when the hub reaches the site's JetStream API and
still has not heard from the site for longer than its lease, on two looks in a row (a
view that resumes on its own does so within a few hundred milliseconds of the link, so
one look's wait spares it a needless update). Again, if that did not bring the site
back, only after a wait that doubles each time (``RETRY_S`` to ``RETRY_MAX_S``): a site
whose streams are missing (no ``skyctl record`` there yet) is not updated every second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.sites.model import LeaseState

__all__ = ["RETRY_MAX_S", "RETRY_S", "Keeper", "Look", "Said"]

RETRY_S = 5.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class Look:
    """One look at a site: whether the hub's request to its JetStream API was answered,
    and what the hub's views of it say (``registry.sites.links.SiteReport``)."""

    site: str
    reachable: bool
    state: LeaseState
    unheard_s: float | None  # the staler view's silence (None: never heard, just made)
    lease_s: float


@dataclass(frozen=True)
class Said:
    """What the keeper makes of a look: lines to print, and whether to re-assert."""

    lines: tuple[str, ...]
    resume: bool


@dataclass
class _Known:
    reachable: bool | None = None
    state: LeaseState | None = None
    stuck_looks: int = 0  # looks in a row with the link up and the site unheard
    resumed_at: float | None = None
    wait_s: float = RETRY_S


@dataclass
class Keeper:
    """The keeper's memory of each site between looks."""

    _sites: dict[str, _Known] = field(default_factory=dict)

    def look(self, seen: Look, now: float) -> Said:
        """What to say and do about ``seen``, looked at at ``now`` (monotonic seconds)."""
        known = self._sites.setdefault(seen.site, _Known())
        lines: list[str] = []
        name = seen.site
        if seen.reachable != known.reachable:
            lines.append(
                f"site {name}: link up (the hub reaches its JetStream API)"
                if seen.reachable
                else f"site {name}: link down (the hub cannot reach its JetStream API)"
            )
        if seen.state != known.state:
            heard = "never" if seen.unheard_s is None else f"{seen.unheard_s:.1f}s ago"
            lines.append(f"site {name}: {seen.state} (the hub last heard from it {heard})")
        known.reachable, known.state = seen.reachable, seen.state
        unheard = seen.unheard_s is not None and seen.unheard_s > seen.lease_s
        if not unheard:
            known.stuck_looks, known.resumed_at, known.wait_s = 0, None, RETRY_S
            return Said(tuple(lines), resume=False)
        known.stuck_looks = known.stuck_looks + 1 if seen.reachable else 0
        if known.stuck_looks < 2:
            return Said(tuple(lines), resume=False)
        if known.resumed_at is not None:
            if now - known.resumed_at < known.wait_s:
                return Said(tuple(lines), resume=False)
            known.wait_s = min(known.wait_s * 2, RETRY_MAX_S)
        known.resumed_at = now
        assert seen.unheard_s is not None
        lines.append(
            f"site {name}: resuming the hub's views of it (link up, yet unheard for "
            f"{seen.unheard_s:.1f}s, past its {seen.lease_s:g}s lease)"
        )
        return Said(tuple(lines), resume=True)
