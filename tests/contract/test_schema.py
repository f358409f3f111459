"""The JSON Schemas in events/schemas/ are generated from the models and match the wire."""

from __future__ import annotations

import json

import jsonschema
import msgpack
import pytest
from hypothesis import given

from events import ServiceCreated, ServiceDeleted, encode
from events.schema import SCHEMA_DIR, render, schemas
from tests.strategies import created

EVENTS_DOC = (SCHEMA_DIR.parent.parent / "docs" / "events.md").read_text()


def test_checked_in_schemas_are_current() -> None:
    generated = schemas()
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(generated)
    for name, schema in generated.items():
        assert (SCHEMA_DIR / name).read_text() == render(schema), (
            f"{name} is stale: run python -m events.schema"
        )
        assert f"events/schemas/{name}" in EVENTS_DOC, f"docs/events.md does not link {name}"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@given(created)
def test_every_encoded_create_validates(event: ServiceCreated) -> None:
    _validator("ServiceCreated.v5.json").validate(msgpack.unpackb(encode(event)))


def test_address_records_validate() -> None:
    from events import AddressAllocated, AddressRangesSet, Holder, NodePortRange, utc_now

    record = AddressAllocated(
        id="r1",
        time=utc_now(),
        actor="a@h",
        kind="NodePort",
        address="30080",
        holder=Holder(namespace="default", name="web", uid="u1"),
    )
    raw = msgpack.unpackb(encode(record))
    _validator("AddressAllocated.v1.json").validate(raw)
    with pytest.raises(jsonschema.ValidationError):
        _validator("AddressAllocated.v1.json").validate({**raw, "kind": "Other"})
    ranges = AddressRangesSet(
        id="r2",
        time=utc_now(),
        actor="a@h",
        service_cidr="10.96.0.0/12",
        node_ports=NodePortRange(first=30000, last=32767),
    )
    _validator("AddressRangesSet.v1.json").validate(msgpack.unpackb(encode(ranges)))


def test_a_delete_validates_and_junk_does_not() -> None:
    from events import utc_now

    event = ServiceDeleted(id="e1", time=utc_now(), actor="a@h", namespace="default", name="web")
    raw = msgpack.unpackb(encode(event))
    validator = _validator("ServiceDeleted.v1.json")
    validator.validate(raw)
    for broken in (
        {**raw, "name": "bad.name"},
        {**raw, "extra": 1},
        {k: v for k, v in raw.items() if k != "prev"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_task_messages_validate_and_junk_does_not() -> None:
    from events.stamps import utc_now
    from events.task import Task, TaskHeartbeat, TaskWithdrawn, encode_task_message

    task = Task(namespace="shop", name="web-1", labels={"app": "web"}, address="10.0.0.1")
    beat = msgpack.unpackb(
        encode_task_message(TaskHeartbeat(instance="i1", since=utc_now(), task=task))
    )
    gone = msgpack.unpackb(
        encode_task_message(TaskWithdrawn(instance="i1", namespace="shop", name="web-1"))
    )
    _validator("TaskHeartbeat.v2.json").validate(beat)
    _validator("TaskWithdrawn.v2.json").validate(gone)
    for broken in (
        {**beat, "task": {**beat["task"], "labels": {f"k{i}": "v" for i in range(17)}}},
        {**beat, "task": {**beat["task"], "name": "bad.name"}},
        {**beat, "extra": 1},
        {k: v for k, v in beat.items() if k != "instance"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            _validator("TaskHeartbeat.v2.json").validate(broken)


def test_membership_and_readiness_messages_validate() -> None:
    from events.control import ReadinessAction, ReadinessRequest, encode_control
    from events.membership import TaskJoined, TaskLeft, encode_membership
    from events.stamps import utc_now
    from events.task import Task

    task = Task(namespace="shop", name="web-1", labels={"app": "web"}, address="10.0.0.1")
    joined = TaskJoined(at=utc_now(), source_seq=3, instance="i1", since=utc_now(), task=task)
    left = TaskLeft(
        at=utc_now(),
        source_seq=0,
        instance="i1",
        task=task,
        how="unknown",
        exact=False,
        after=utc_now(),
    )
    _validator("TaskJoined.v1.json").validate(msgpack.unpackb(encode_membership(joined)))
    _validator("TaskLeft.v1.json").validate(msgpack.unpackb(encode_membership(left)))
    request = ReadinessRequest(action=ReadinessAction.DRAIN, reason="deploy", by="alice")
    _validator("ReadinessRequest.v1.json").validate(msgpack.unpackb(encode_control(request)))
    bad = {**msgpack.unpackb(encode_membership(left)), "how": "vanished"}
    with pytest.raises(jsonschema.ValidationError):
        _validator("TaskLeft.v1.json").validate(bad)
