"""The plain codec gives the models' answers, or says it is not certain (no server).

Two readers of one contract must not drift: everything ``events.plain`` accepts, the
pydantic models accept with the same values; everything it writes is byte for byte what
``events.encode`` writes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import (
    CURRENT_VERSIONS,
    DecodeError,
    Service,
    ServiceCreated,
    ServiceDeleted,
    decode,
    encode,
    plain,
)
from events.plain import PlainService
from registry.views import plain_service
from tests.test_events import created, names, times


def same_values(model: Service, view: PlainService) -> bool:
    return plain_service(model) == view and list(model.selector) == list(view.selector)


deleted = st.builds(
    ServiceDeleted,
    id=st.uuids().map(lambda u: u.hex),
    time=times,
    actor=st.text(min_size=1, max_size=20),
    prev=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    namespace=names,
    name=names,
)


@given(created)
def test_plain_writes_the_bytes_the_models_write_for_a_create(event: ServiceCreated) -> None:
    data = plain.encode_created(
        plain_service(event.service),
        event_id=event.id,
        time=event.time,
        actor=event.actor,
        prev=event.prev,
    )
    assert data == encode(event)


@given(deleted)
def test_plain_writes_the_bytes_the_models_write_for_a_delete(event: ServiceDeleted) -> None:
    data = plain.encode_deleted(
        event.namespace,
        event.name,
        event_id=event.id,
        time=event.time,
        actor=event.actor,
        prev=event.prev,
    )
    assert data == encode(event)


@given(created)
def test_plain_reads_every_create_the_models_write(event: ServiceCreated) -> None:
    raw = plain.unpack(encode(event))
    assert plain.check(raw) == "ServiceCreated"
    assert plain.identity(raw) == (event.namespace, event.name)
    assert same_values(event.service, plain.service_of(raw))


@given(deleted)
def test_plain_reads_every_delete_the_models_write(event: ServiceDeleted) -> None:
    raw = plain.unpack(encode(event))
    assert plain.check(raw) == "ServiceDeleted"
    assert plain.identity(raw) == (event.namespace, event.name)


# Values that msgpack can carry, to put where they do not belong.
wire_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=70)
    | st.sampled_from(
        ["ClusterIP", "clusterip", "TCP", "tcp", "UDP", "", "a", "a-b", "x" * 64, "0" * 64]
    )
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid event with one or two places replaced, removed or added."""
    event = draw(created | deleted)
    raw = msgpack.unpackb(encode(event))
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(raw)
        path = draw(st.sampled_from(paths))
        parent = raw
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(wire_values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(wire_values)
        else:
            parent.append(draw(wire_values))
    return raw


def models_read(raw: Any) -> ServiceCreated | ServiceDeleted | None:
    try:
        data = msgpack.packb(raw)
    except (TypeError, ValueError):
        return None
    try:
        return decode(data)
    except DecodeError:
        return None


@settings(max_examples=1500)
@given(mutated())
def test_plain_accepts_only_what_the_models_accept_with_the_same_values(raw: Any) -> None:
    kind = plain.check(raw)
    if kind is None:
        return  # not certain: the models decide (and may well accept it)
    event = models_read(raw)
    assert event is not None, f"plain accepted what the models refuse: {raw!r}"
    assert event.type == kind
    assert plain.identity(raw) == (event.namespace, event.name)
    assert raw["id"] == event.id and raw["actor"] == event.actor and raw["prev"] == event.prev
    assert datetime.fromisoformat(raw["time"]) == event.time
    if isinstance(event, ServiceCreated):
        assert same_values(event.service, plain.service_of(raw))


@given(st.binary(max_size=300))
def test_plain_is_never_certain_about_garbage(data: bytes) -> None:
    raw = plain.unpack(data)
    if plain.check(raw) is not None:
        decode(data)  # must not raise


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
        "2024-02-29T12:00:00.000000Z",
        "2023-02-29T12:00:00.000000Z",
        "2026-11-25T24:00:00.000000Z",
        "2026-11-25T23:59:60.000000Z",
        "2026-13-01T00:00:00.000000Z",
        "2026-11-25T01:02:03Z",
        "2026-11-25T01:02:03.000000+00:00",
        "2026-11-25 01:02:03.000000Z",
    ],
)
def test_plain_and_models_agree_on_times(time: str) -> None:
    raw = msgpack.unpackb(
        encode(ServiceDeleted(id="e", time=datetime.now(UTC), actor="a", namespace="n", name="x"))
    )
    raw["time"] = time
    if plain.check(raw) is not None:
        event = models_read(raw)
        assert event is not None and event.time == datetime.fromisoformat(time)


def test_plain_knows_the_current_versions_and_schemas() -> None:
    """When a model changes, ``events.plain`` must be taught the change: this test says so.

    Update ``plain.VERSIONS`` and the checks, then the fingerprint below.
    """
    assert plain.VERSIONS == CURRENT_VERSIONS
    schemas = json.dumps(
        [ServiceCreated.model_json_schema(), ServiceDeleted.model_json_schema()], sort_keys=True
    )
    assert hashlib.sha256(schemas.encode()).hexdigest()[:16] == "495424bbff2fe2f8"
