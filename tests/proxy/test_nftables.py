"""The plan in the kernel, with real nftables: written, changed, read back, repaired."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from registry.proxy.nftables import (
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
    # One pick for every frontend with 1 backend (picks are made for 1 and 2, both banks).
    assert [name for name, keys in observed.members.items() if keys] == ["fe-tcp-1-0"]

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
        assert await kernel.holds(plan), changes
        observed = observe(await kernel.listing())
        assert observed is not None
        assert len(observed.backends) == sum(map(len, plan.values())), "a bank was left"
        in_picks = sum(len(keys) for keys in observed.members.values())
        assert in_picks == sum(1 for b in plan.values() if b), "a frontend left in a pick"


async def test_a_flushed_or_edited_table_is_seen_and_written_again(
    nft_table: str, transport: Transport
) -> None:
    kernel = Nftables(nft_table, transport)
    plan: Plan = {A: TWO}
    await kernel.sync(plan)
    for tamper in (
        f"flush set ip {nft_table} fe-tcp-2-0",
        f"delete table ip {nft_table}",
    ):
        await nft(*tamper.split())
        assert not await kernel.holds(plan), tamper
        await kernel.sync(plan)
        assert await kernel.holds(plan)
    # A rule of someone else's in one of our chains: not ours, so not equal.
    chain = observe(await kernel.listing())
    assert chain is not None
    await nft("add", "rule", "ip", nft_table, "pick-tcp-2-0", "counter")
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


async def test_many_changes_to_one_frontend_stay_correct(
    nft_table: str, transport: Transport
) -> None:
    """Each change writes the frontend's other bank and moves it to its new pick in one
    transaction: whatever the sequence, the kernel holds the last plan."""
    kernel = Nftables(nft_table, transport)
    await kernel.sync({A: ONE})
    backends = [TWO, (), ONE, TWO, (Backend("127.0.0.4", 8080),), (), TWO]
    for i, after in enumerate(backends):
        before = kernel.kernel.plan[A]
        await kernel.apply([Change(A, before, after)])
        assert await kernel.holds({A: after}), i
        observed = observe(await kernel.listing())
        assert observed is not None and len(observed.backends) == len(after), i


def test_a_new_frontend_and_a_first_endpoint_only_add() -> None:
    kernel = Kernel()
    full_script({A: ()}, kernel)
    script = change_script([Change(A, (), ONE), Change(B, None, ())], kernel)
    assert "delete" not in script and "add element" in script  # nothing to take away
