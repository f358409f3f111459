"""The plan in the kernel, with real nftables: written, changed, read back, repaired."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from registry.proxy.nftables import (
    LEVELS,
    Kernel,
    Nftables,
    change_script,
    full_script,
    observe,
    observed_plan,
)
from registry.proxy.plan import Backend, Change, Frontend, Plan
from registry.proxy.transport import Command, Library, Transport
from tests.proxy.traffic import nft


@pytest.fixture(params=["library", "command"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    """Both ways of reaching nftables: libnftables in this process, and the program."""
    made: Transport | None = Library.load() if request.param == "library" else Command()
    if made is None:
        pytest.skip("libnftables does not load here")
    yield made
    made.close()


A = Frontend("10.96.0.10", "tcp", 80)
B = Frontend("10.96.0.11", "udp", 53)
N = Frontend("127.0.0.1", "tcp", 30080)
ONE = (Backend("127.0.0.2", 8080),)
TWO = (Backend("127.0.0.2", 8080), Backend("127.0.0.3", 8080))


async def test_the_table_holds_the_plan_through_small_changes(
    nft_table: str, transport: Transport
) -> None:
    kernel = Nftables(nft_table, transport)
    plan: Plan = {A: ONE, N: ONE, B: ()}
    await kernel.sync(plan)
    assert await kernel.holds(plan)
    observed = observe(await kernel.listing())
    assert observed is not None and observed_plan(observed) == plan
    # One chain picks for every frontend with 1 backend (made for 1 and 2, in each bank).
    assert set(observed.maps["service-ips"].values()) == {"goto pick-tcp-1-0"}

    steps: list[list[Change]] = [
        [Change(A, ONE, TWO)],  # a second endpoint: a new chain; N keeps the old one
        [Change(N, ONE, TWO)],  # now both share the new one, the old is gone
        [Change(B, (), (Backend("127.0.0.2", 5353),))],
        [Change(A, TWO, ()), Change(N, TWO, None)],  # no endpoint: rejects; gone
    ]
    for changes in steps:
        await kernel.apply(changes)
        for change in changes:
            if change.after is None:
                plan.pop(change.frontend)
            else:
                plan[change.frontend] = change.after
        assert await kernel.holds(plan), changes  # before tidying: the first rules decide
        await kernel.tidy()
        assert await kernel.holds(plan), changes
        observed = observe(await kernel.listing())
        assert observed is not None
        assert not any(observed.maps[f"overlay-{n}"] for n in range(1, LEVELS + 1)), "unfolded"
        assert len(observed.backends) == sum(map(len, plan.values())), "a bank was left"


async def test_a_flushed_or_edited_table_is_seen_and_written_again(
    nft_table: str, transport: Transport
) -> None:
    kernel = Nftables(nft_table, transport)
    plan: Plan = {A: TWO}
    await kernel.sync(plan)
    for tamper in (
        f"flush map ip {nft_table} service-ips",
        f"delete table ip {nft_table}",
    ):
        await nft(*tamper.split())
        assert not await kernel.holds(plan), tamper
        await kernel.sync(plan)
        assert await kernel.holds(plan)
    # A rule of someone else's in one of our chains: not ours, so not equal.
    chain = observe(await kernel.listing())
    assert chain is not None
    name = chain.maps["service-ips"][A].removeprefix("goto ")
    await nft("add", "rule", "ip", nft_table, name, "counter")
    assert not await kernel.holds(plan)


async def test_nothing_outside_its_own_table_is_touched(
    nft_table: str, transport: Transport
) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    await nft(
        "-f",
        "-",
        script=(
            f"add table ip {other}\nadd chain ip {other} keep\nadd rule ip {other} keep counter\n"
        ),
    )
    try:
        kernel = Nftables(nft_table, transport)
        await kernel.sync({A: ONE})
        await kernel.apply([Change(A, ONE, None)])
        assert await kernel.cleanup()
        assert not await kernel.cleanup()  # nothing left to remove
        listed = await nft("list", "table", "ip", other)
        assert "chain keep" in listed and "counter" in listed
    finally:
        await nft("delete", "table", "ip", other, check=False)


def test_a_listing_that_is_not_ours_is_never_taken_for_a_plan() -> None:
    for listing in (None, {}, {"nftables": "x"}, {"nftables": [1]}, {"nftables": [{"map": 5}]}):
        observed = observe(listing)
        assert observed is None or observed_plan(observed) is None


async def test_changes_to_one_frontend_only_add_until_its_levels_are_used(
    nft_table: str, transport: Transport
) -> None:
    """Deletions wait for the kernel (an RCU grace period): the first changes to a
    frontend after a tidy add only; the one after them folds, and all stay correct."""
    kernel = Nftables(nft_table, transport)
    await kernel.sync({A: ONE})
    backends = [TWO, (), ONE, TWO, (Backend("127.0.0.4", 8080),), ()]
    for i, after in enumerate(backends):
        state = kernel.kernel.copy()
        before = dict(state.plan)[A]
        script = change_script([Change(A, before, after)], state, nft_table)
        adds_only = "delete" not in script
        assert adds_only == (i % (LEVELS + 1) != LEVELS), (i, script)  # every 4th folds
        await kernel.apply([Change(A, before, after)])
        assert await kernel.holds({A: after}), i
    await kernel.tidy()
    assert await kernel.holds({A: ()})
    assert not kernel.kernel.untidy


def test_a_new_frontend_and_a_first_endpoint_only_add() -> None:
    kernel = Kernel()
    full_script({A: ()}, kernel)
    script = change_script([Change(A, (), ONE), Change(B, None, ())], kernel)
    assert "delete" not in script and "add element" in script
