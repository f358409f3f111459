"""Subscribers: typed events from any starting point, and durable ones that resume."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from events import Service, ServiceCreated, ServiceDeleted
from registry.client import Registry
from registry.errors import CheckpointConflict, InvalidInput
from registry.services.subscription import Delivery, Subscription


async def take(sub: Subscription, n: int) -> list[Delivery]:
    iterator = aiter(sub)
    return [await asyncio.wait_for(anext(iterator), 10) for _ in range(n)]


def names(deliveries: list[Delivery]) -> list[tuple[str, str]]:
    return [(d.event.type, d.event.name) for d in deliveries]


@pytest.fixture
async def history(registry: Registry, ns: str) -> list[int]:
    """a, b created; a deleted; c created. Yields their sequences."""
    seqs = [
        (await registry.create(Service(namespace=ns, name="a"))).seq,
        (await registry.create(Service(namespace=ns, name="b"))).seq,
    ]
    await registry.delete(ns, "a")
    # The delete: after b and b's cluster IP record (nothing else writes in this namespace).
    seqs.append(seqs[-1] + 2)
    seqs.append((await registry.create(Service(namespace=ns, name="c"))).seq)
    return seqs


async def test_from_the_beginning_typed_and_in_order(
    registry: Registry, ns: str, history: list[int]
) -> None:
    async with registry.subscribe(ns, start="beginning") as sub:
        got = await take(sub, 4)
    assert names(got) == [
        ("ServiceCreated", "a"),
        ("ServiceCreated", "b"),
        ("ServiceDeleted", "a"),
        ("ServiceCreated", "c"),
    ]
    assert isinstance(got[0].event, ServiceCreated) and isinstance(got[2].event, ServiceDeleted)
    assert [d.seq for d in got] == sorted(d.seq for d in got)
    assert all(d.stored.tzinfo is not None for d in got)


async def test_from_a_sequence_a_time_and_by_name(
    registry: Registry, ns: str, history: list[int]
) -> None:
    async with registry.subscribe(ns, start=history[2]) as sub:
        assert names(await take(sub, 2)) == [("ServiceDeleted", "a"), ("ServiceCreated", "c")]
    async with registry.subscribe(ns, "a", start="beginning") as sub:
        assert names(await take(sub, 2)) == [("ServiceCreated", "a"), ("ServiceDeleted", "a")]
    async with registry.subscribe(ns, start=datetime(2000, 1, 1, tzinfo=UTC)) as sub:
        assert len(await take(sub, 4)) == 4


async def test_from_now_sees_only_what_comes_next(
    registry: Registry, ns: str, history: list[int]
) -> None:
    async with registry.subscribe(ns) as sub:
        await registry.create(Service(namespace=ns, name="d"))
        assert names(await take(sub, 1)) == [("ServiceCreated", "d")]


async def test_changes_carry_the_service_even_for_deletes_of_older_creates(
    registry: Registry, ns: str, history: list[int]
) -> None:
    async with registry.subscribe(ns, start=history[2]) as sub:
        changes = sub.changes()
        deleted = await asyncio.wait_for(anext(changes), 10)
        added = await asyncio.wait_for(anext(changes), 10)
    assert deleted.kind == "DELETED" and deleted.record.service.name == "a"
    assert deleted.record.seq == history[0]  # the create it undid, looked up in the log
    assert added.kind == "ADDED" and added.record.service.name == "c"


async def test_a_durable_subscriber_resumes_after_its_last_ack(registry: Registry, ns: str) -> None:
    name = f"sub-{ns}"
    for i in range(3):
        await registry.create(Service(namespace=ns, name=f"s{i}"))
    async with registry.subscribe(ns, start="beginning", durable=name) as sub:
        first = await take(sub, 3)
        await sub.ack(first[1])  # s2 is received but not acknowledged: a crash before ack
    await registry.create(Service(namespace=ns, name="s3"))
    await registry.delete(ns, "s0")
    # Restarted: continues after s1, so s2 comes again (at least once), then the new ones.
    async with registry.subscribe(ns, start="beginning", durable=name) as sub:
        again = await take(sub, 3)
        assert names(again) == [
            ("ServiceCreated", "s2"),
            ("ServiceCreated", "s3"),
            ("ServiceDeleted", "s0"),
        ]
        await sub.ack(again[-1])
    await registry.create(Service(namespace=ns, name="s4"))
    async with registry.subscribe(ns, durable=name) as sub:
        assert names(await take(sub, 1)) == [("ServiceCreated", "s4")]


async def test_a_durable_subscription_from_now_keeps_its_starting_point(
    registry: Registry, ns: str
) -> None:
    name = f"now-{ns}"
    async with registry.subscribe(ns, durable=name):
        pass  # started, then stopped before anything arrived
    await registry.create(Service(namespace=ns, name="while-down"))
    async with registry.subscribe(ns, durable=name) as sub:
        assert names(await take(sub, 1)) == [("ServiceCreated", "while-down")]


async def test_one_durable_name_runs_once(registry: Registry, ns: str) -> None:
    name = f"one-{ns}"
    await registry.create(Service(namespace=ns, name="x"))
    await registry.create(Service(namespace=ns, name="y"))
    async with (
        registry.subscribe(ns, start="beginning", durable=name) as first,
        registry.subscribe(ns, start="beginning", durable=name) as second,
    ):
        a = await take(first, 2)
        b = await take(second, 2)
        await first.ack(a[0])
        with pytest.raises(CheckpointConflict, match="another process"):
            await second.ack(b[1])


async def test_a_durable_name_follows_one_filter(registry: Registry, ns: str) -> None:
    name = f"flt-{ns}"
    async with registry.subscribe(ns, durable=name):
        pass
    with pytest.raises(InvalidInput, match=r"it follows skyflow\.svc"):
        async with registry.subscribe(ns + "z", durable=name):
            pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0}, 'invalid start "0"'),
        ({"start": "later"}, 'invalid start "later"'),
        ({"durable": "bad name"}, 'invalid subscription "bad name"'),
        ({"start": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_arguments(registry: Registry, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        registry.subscribe(**kwargs)  # type: ignore[arg-type]


async def test_loops_can_take_turns_on_one_subscription(
    registry: Registry, ns: str, history: list[int]
) -> None:
    async with registry.subscribe(ns, start="beginning") as sub:
        seqs = []
        async for delivery in sub:
            seqs.append(delivery.seq)
            break
        seqs.append((await anext(aiter(sub))).seq)
        seqs += [d.seq for d in await take(sub, 2)]
    assert seqs == history


async def test_a_checkpoint_save_whose_reply_was_lost_is_not_a_conflict(
    registry: Registry, ns: str
) -> None:
    store = await registry.log.checkpoints()
    name = f"lost-{ns}"
    first = await store.save(name, 5, "skyflow.svc.x.*", 0)
    # The same save again, as after a reply lost in a server crash: same value, old revision.
    assert await store.save(name, 5, "skyflow.svc.x.*", 0) == first
    second = await store.save(name, 9, "skyflow.svc.x.*", first)
    assert await store.save(name, 9, "skyflow.svc.x.*", first) == second
    with pytest.raises(CheckpointConflict):
        await store.save(name, 12, "skyflow.svc.x.*", first)  # a real second writer
