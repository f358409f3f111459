"""When ``skyctl site watch`` resumes the hub's views of a site (``registry.sites.keeper``,
pure): only with the link up and the site unheard past its lease on two looks in a row,
and again only after a wait that doubles."""

from __future__ import annotations

import itertools

from registry.sites.keeper import RETRY_MAX_S, RETRY_S, Keeper, Look
from registry.sites.model import LeaseState

LEASE = 2.0


def look(reachable: bool, unheard: float | None, state: LeaseState = "live") -> Look:
    return Look("east", reachable, state, unheard, LEASE)


def test_a_site_heard_within_its_lease_is_left_alone() -> None:
    keeper = Keeper()
    for t in range(10):
        assert not keeper.look(look(True, 0.5), float(t)).resume


def test_a_cut_site_is_not_resumed_while_the_hub_cannot_reach_it() -> None:
    keeper = Keeper()
    said = [keeper.look(look(False, 3.0 + t, "stale"), float(t)) for t in range(30)]
    assert not any(s.resume for s in said)
    assert said[0].lines == (
        "site east: link down (the hub cannot reach its JetStream API)",
        "site east: stale (the hub last heard from it 3.0s ago)",
    )
    assert all(s.lines == () for s in said[1:])  # said once, not every look


def test_link_back_but_unheard_on_two_looks_in_a_row_resumes_once() -> None:
    keeper = Keeper()
    keeper.look(look(False, 30.0, "stale"), 0.0)
    first = keeper.look(look(True, 31.0, "stale"), 1.0)
    assert not first.resume  # a view that resumes on its own does so by the next look
    assert first.lines == ("site east: link up (the hub reaches its JetStream API)",)
    second = keeper.look(look(True, 32.0, "stale"), 2.0)
    assert second.resume
    assert second.lines == (
        "site east: resuming the hub's views of it (link up, yet unheard for 32.0s, past "
        "its 2s lease)",
    )
    # It worked: heard again, live, and nothing more to do.
    back = keeper.look(look(True, 0.2, "live"), 3.0)
    assert not back.resume
    assert back.lines == ("site east: live (the hub last heard from it 0.2s ago)",)


def test_a_site_that_resumes_by_itself_is_not_touched() -> None:
    keeper = Keeper()
    keeper.look(look(False, 30.0, "stale"), 0.0)
    keeper.look(look(True, 31.0, "stale"), 1.0)
    assert not keeper.look(look(True, 0.1, "live"), 2.0).resume


def test_a_resume_that_does_not_help_is_retried_after_a_doubling_wait() -> None:
    keeper = Keeper()
    resumed_at = []
    t = 0.0
    while t < 400:
        if keeper.look(look(True, 10.0 + t, "stale"), t).resume:
            resumed_at.append(t)
        t += 0.5
    gaps = [b - a for a, b in itertools.pairwise(resumed_at)]
    assert resumed_at[0] == 0.5
    assert gaps[:5] == [RETRY_S, RETRY_S * 2, RETRY_S * 4, RETRY_S * 8, RETRY_MAX_S]
    assert all(gap == RETRY_MAX_S for gap in gaps[4:])


def test_each_site_is_kept_on_its_own() -> None:
    keeper = Keeper()
    west = Look("west", True, "stale", 9.0, LEASE)
    keeper.look(look(True, 9.0, "stale"), 0.0)
    assert keeper.look(look(True, 9.5, "stale"), 1.0).resume
    assert not keeper.look(west, 1.0).resume  # west's first look
    assert keeper.look(west, 2.0).resume
