"""create_many / delete_many: the same checked writes as one create or delete, pipelined."""

from __future__ import annotations

import asyncio

import pytest

from events import STREAM_NAME, Service, ServiceCreated, ServiceDeleted, decode, subject_for
from registry.client import Registry
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.services.decisions import chain_hash
from registry.services.projection import ServiceRecord
from tests.helpers import raw_nats, stream_last_seq


async def test_create_many_creates_each_once_in_input_order(registry: Registry, ns: str) -> None:
    services = [Service(namespace=ns, name=f"s{i}", selector={"i": str(i)}) for i in range(300)]
    outcomes = await registry.create_many(services, concurrency=32)
    created = [o.service for o in outcomes if isinstance(o, ServiceRecord)]
    # Each as asked, with a cluster IP of its own filled in.
    assert [s.model_copy(update={"cluster_ip": None}) for s in created] == services
    assert len({s.cluster_ip for s in created}) == len(services)
    listed = await registry.list(ns)
    assert {r.key: r.seq for r in listed} == {
        o.key: o.seq for o in outcomes if isinstance(o, ServiceRecord)
    }
    # Each stored message is the event a single create writes, with both write headers.
    last = (await registry.log.last_many([subject_for(ns, "s7")]))[subject_for(ns, "s7")]
    event = decode(last.data)
    assert isinstance(event, ServiceCreated) and event.prev is None
    assert last.headers["Nats-Msg-Id"] == event.id
    assert last.headers["Nats-Expected-Last-Subject-Sequence"] == "0"


async def test_live_services_and_duplicates_in_the_batch_are_refused(
    registry: Registry, ns: str, url: str
) -> None:
    await registry.create(Service(namespace=ns, name="old"))
    before = await stream_last_seq(url)
    batch = [
        Service(namespace=ns, name="old"),
        Service(namespace=ns, name="new"),
        Service(namespace=ns, name="twice", ports=({"port": 1, "target_port": 1},)),
        Service(namespace=ns, name="twice", ports=({"port": 2, "target_port": 2},)),
    ]
    outcomes = await registry.create_many(batch)
    assert isinstance(outcomes[0], AlreadyExists)
    assert isinstance(outcomes[1], ServiceRecord)
    assert sorted(type(o).__name__ for o in outcomes[2:]) == ["AlreadyExists", "ServiceRecord"]
    assert await stream_last_seq(url) == before + 2 * 2  # each service and its cluster IP


async def test_a_second_run_writes_nothing(registry: Registry, ns: str, url: str) -> None:
    services = [Service(namespace=ns, name=f"s{i}") for i in range(20)]
    await registry.create_many(services)
    before = await stream_last_seq(url)
    again = await registry.create_many(services)
    assert all(isinstance(o, AlreadyExists) for o in again)
    assert await stream_last_seq(url) == before


async def test_invalid_input_writes_nothing(registry: Registry, ns: str, url: str) -> None:
    before = await stream_last_seq(url)
    with pytest.raises(InvalidInput, match=r'invalid service #1 name "bad name"'):
        await registry.create_many(
            [Service(namespace=ns, name="fine"), {"namespace": ns, "name": "bad name"}]
        )
    with pytest.raises(InvalidInput, match=r'invalid name "x\.y"'):
        await registry.delete_many([(ns, "fine"), (ns, "x.y")])
    assert await stream_last_seq(url) == before


async def test_delete_many_then_create_many_chains_history(
    registry: Registry, ns: str, url: str
) -> None:
    names = [f"s{i}" for i in range(50)]
    created = await registry.create_many(Service(namespace=ns, name=n) for n in names)
    deleted = await registry.delete_many([(ns, n) for n in [*names[:25], "ghost"]])
    assert [o.seq for o in deleted[:25]] == [o.seq for o in created[:25]]  # type: ignore[union-attr]
    assert isinstance(deleted[25], NotFound)
    again = await registry.create_many(Service(namespace=ns, name=n) for n in names)
    assert all(isinstance(o, ServiceRecord) for o in again[:25])
    assert all(isinstance(o, AlreadyExists) for o in again[25:])
    # The re-create expected the delete's sequence and links to its body.
    subject = subject_for(ns, "s3")
    last = (await registry.log.last_many([subject]))[subject]
    event = decode(last.data)
    assert isinstance(event, ServiceCreated)
    expected = int(last.headers["Nats-Expected-Last-Subject-Sequence"])
    async with raw_nats(url) as nc:
        delete_msg = await nc.jetstream().get_msg(STREAM_NAME, expected)
    assert isinstance(decode(delete_msg.data or b""), ServiceDeleted)
    assert event.prev == chain_hash(delete_msg.data or b"")
    assert {r.service.name for r in await registry.list(ns)} == set(names)


async def test_bulk_and_single_writers_race_fairly(url: str, ns: str) -> None:
    """Bulk writes are conditional too: against single creates, each name is created once."""
    names = [f"s{i}" for i in range(40)]
    async with await Registry.connect(url) as bulk, await Registry.connect(url) as single:

        async def singles() -> list[ServiceRecord | BaseException]:
            return await asyncio.gather(
                *(single.create(Service(namespace=ns, name=n)) for n in names),
                return_exceptions=True,
            )

        many, one = await asyncio.gather(
            bulk.create_many([Service(namespace=ns, name=n) for n in names], concurrency=8),
            singles(),
        )
    for name, a, b in zip(names, many, one, strict=True):
        wins = [isinstance(x, ServiceRecord) for x in (a, b)]
        assert wins.count(True) == 1, name
        assert isinstance(a if not wins[0] else b, AlreadyExists)
