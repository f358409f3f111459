"""The event contract, with no server: models, names, and a codec that refuses to guess."""

from __future__ import annotations

from datetime import datetime

import msgpack
import pytest
from hypothesis import given
from pydantic import ValidationError

from events import (
    FutureVersion,
    InvalidEvent,
    NotAnEvent,
    Port,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceType,
    UnknownEventType,
    decode,
    encode,
    filter_for,
    parse_subject,
    subject_for,
)
from events.names import check_label_key, check_name
from tests.strategies import created, names, times


@given(created)
def test_created_round_trips(event: ServiceCreated) -> None:
    assert decode(encode(event)) == event


@given(names, names, times)
def test_deleted_round_trips(namespace: str, name: str, time: datetime) -> None:
    event = ServiceDeleted(id="e1", time=time, actor="bob@host", namespace=namespace, name=name)
    assert decode(encode(event)) == event


def _plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | bool)


@given(created)
def test_wire_format_uses_plain_msgpack_types(event: ServiceCreated) -> None:
    raw = msgpack.unpackb(encode(event), strict_map_key=True)
    assert _plain(raw)
    assert raw["type"] == "ServiceCreated"
    assert raw["version"] == 5  # ServiceCreated v5: addresses, external name, port names
    assert raw["time"].endswith("Z")
    assert datetime.fromisoformat(raw["time"]) == event.time


def _raw(**overrides: object) -> bytes:
    base: dict[str, object] = {
        "type": "ServiceDeleted",
        "version": 1,
        "id": "x1",
        "time": "2026-11-25T00:00:00.000000Z",
        "actor": "a@b",
        "prev": None,
        "namespace": "default",
        "name": "web",
    }
    base.update(overrides)
    return msgpack.packb({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xc1\xff garbage", NotAnEvent),
        (msgpack.packb([1, 2, 3]), NotAnEvent),
        (_raw(type=...), NotAnEvent),
        (_raw(version="1"), NotAnEvent),
        (_raw(type="ServicePatched"), UnknownEventType),
        (_raw(version=2), FutureVersion),
        (_raw(version=0), InvalidEvent),
        (_raw(name="bad.name"), InvalidEvent),
        (_raw(extra="field"), InvalidEvent),
        (_raw(time="yesterday"), InvalidEvent),
    ],
)
def test_decode_refuses_what_it_cannot_read_for_certain(
    data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode(data)


def test_future_version_says_what_to_do() -> None:
    with pytest.raises(FutureVersion, match=r"newer than this reader.*upgrade"):
        decode(_raw(version=7))


def test_service_type_is_case_insensitive_in_and_canonical_out() -> None:
    assert Service(name="a", type="loadbalancer").type is ServiceType.LOAD_BALANCER
    assert ServiceType("NODEPORT").value == "NodePort"


def test_service_refuses_duplicate_ports() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        Service(name="a", ports=(Port(port=80, target_port=1), Port(port=80, target_port=2)))


def test_same_port_number_on_two_protocols_is_fine() -> None:
    Service(
        name="dns",
        ports=(
            Port(port=53, target_port=53, protocol="UDP"),
            Port(port=53, target_port=53),
        ),
    )


def test_selector_is_kept_in_one_canonical_order() -> None:
    a = Service(name="a", selector={"b": "1", "a": "2"})
    b = Service(name="a", selector={"a": "2", "b": "1"})
    assert list(a.selector) == ["a", "b"]
    assert a == b


@pytest.mark.parametrize("good", ["myService", "a", "a-b", "A1", "x" * 63, "0abc"])
def test_valid_names(good: str) -> None:
    assert check_name(good) == good
    assert Service(name=good, namespace=good).name == good


@pytest.mark.parametrize(
    "bad", ["", "-a", "a-", "a.b", "a_b", "a b", "x" * 64, "a*", "a>", "ünï", "abc\n"]
)
def test_invalid_names(bad: str) -> None:
    with pytest.raises(ValueError, match=r"must|may"):
        check_name(bad)
    with pytest.raises(ValidationError):
        Service(name=bad)


@pytest.mark.parametrize("good", ["app", "app.kubernetes.io/name", "a_b.c-d", "x" * 63])
def test_valid_label_keys(good: str) -> None:
    assert check_label_key(good) == good
    Service(name="a", selector={good: "v"})


@pytest.mark.parametrize("bad", ["", "/a", "Upper.Case/x", "a b", "-a", "x" * 64, "a/"])
def test_invalid_label_keys(bad: str) -> None:
    with pytest.raises(ValueError, match=r"label key"):
        check_label_key(bad)
    with pytest.raises(ValidationError):
        Service(name="a", selector={bad: "v"})


def test_subjects() -> None:
    assert subject_for("default", "myService") == "skyflow.svc.default.myService"
    assert parse_subject("skyflow.svc.default.myService") == ("default", "myService")
    assert filter_for("prod") == "skyflow.svc.prod.*"
    assert filter_for() == "skyflow.svc.*.*"
    assert filter_for("prod", "web") == "skyflow.svc.prod.web"
    for bad in ["skyflow.svc.a", "other.svc.a.b", "skyflow.svc.a.b.c"]:
        with pytest.raises(ValueError, match="not a service subject"):
            parse_subject(bad)
