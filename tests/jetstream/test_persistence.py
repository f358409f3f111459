"""State survives a restart of the server: the log on disk is the truth."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import Service
from registry.client import Registry
from registry.errors import AlreadyExists, NotFound
from registry.jetstream.server import NatsServer
from registry.services.projector import rebuild


def _view(records: list) -> list[tuple[str, str, int, tuple]]:  # type: ignore[type-arg]
    return [(r.service.namespace, r.service.name, r.seq, r.service.ports) for r in records]


async def test_state_after_restart_equals_state_before(fresh_server: NatsServer) -> None:
    async with await Registry.connect(fresh_server.url) as reg:
        for i in range(30):
            await reg.create(Service(namespace=f"ns{i % 3}", name=f"svc{i}"))
        for i in range(0, 30, 4):
            await reg.delete(f"ns{i % 3}", f"svc{i}")
        before = _view(await reg.list())
    fresh_server.stop()
    fresh_server.start()
    async with await Registry.connect(fresh_server.url) as reg:
        assert _view(await reg.list()) == before
        full = await rebuild(reg.log, "skyflow.svc.*.*")
        assert _view(full.projection.select()) == before
        with pytest.raises(AlreadyExists):
            await reg.create(Service(namespace="ns1", name="svc1"))


operations = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=25
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations)
async def test_random_creates_and_deletes_match_a_dict_model(
    url: str, ops: list[tuple[bool, str]]
) -> None:
    import uuid

    ns = f"p-{uuid.uuid4().hex[:10]}"
    model: dict[str, int] = {}
    async with await Registry.connect(url) as reg:
        for is_create, name in ops:
            if is_create:
                try:
                    record = await reg.create(Service(namespace=ns, name=name, ports=()))
                    assert name not in model
                    model[name] = record.seq
                except AlreadyExists:
                    assert name in model
            else:
                try:
                    await reg.delete(ns, name)
                    del model[name]
                except NotFound:
                    assert name not in model
        listed = {r.service.name: r.seq for r in await reg.list(ns)}
        assert listed == model
        rebuilt = await rebuild(reg.log, f"skyflow.svc.{ns}.*")
        assert {k[1]: r.seq for k, r in rebuilt.projection.services.items()} == model
        for name in "abc":
            if name in model:
                assert (await reg.get(ns, name)).seq == model[name]
