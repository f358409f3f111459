"""The pure core of discovery: task messages, subjects, the fold of the liveness stream,
matching endpoints to selectors, and choosing one. No server."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.render import endpoints_cell
from cli.serviceviews import wide_rows
from events import Port, Service
from events.codec import DecodeError
from events.liveness import (
    MAX_TASK_BYTES,
    label_token,
    parse_task_subject,
    selector_filter,
    task_subjects,
    token_text,
)
from events.task import Task, TaskHeartbeat, TaskWithdrawn, decode_task_message, encode_task_message
from registry.discovery.balance import RoundRobin, two_choices
from registry.discovery.endpoints import endpoints_for, host_port, index_label, selects
from registry.discovery.tasks import TaskView, parse_ttl
from registry.log.entry import Skipped
from registry.log.stored import StoredMessage

NOW = datetime(2026, 11, 26, tzinfo=UTC)
MARKER = {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "10s", "Nats-Rollup": "sub"}


def task(name: str = "web-1", address: str = "10.0.0.1", **fields: Any) -> Task:
    values: dict[str, Any] = {
        "namespace": "shop",
        "name": name,
        "labels": {"app": "web"},
        "address": address,
        "cluster": "eu-1",
    }
    values.update(fields)
    return Task.model_validate(values)


def beat(t: Task, instance: str = "i1") -> bytes:
    return encode_task_message(TaskHeartbeat(instance=instance, since=NOW, task=t))


class Stream:
    """Messages as a reader of the liveness stream gets them, in order."""

    def __init__(self) -> None:
        self.seq = 0
        self.skipped: list[Skipped] = []
        self.view = TaskView(self.skipped.append)

    def put(self, subject: str, data: bytes, headers: dict[str, str] | None = None):
        self.seq += 1
        message = StoredMessage(self.seq, subject, data, headers or {}, self.seq * 1_000_000)
        return self.view.apply(message)

    def announce(self, t: Task, ttl: str = "2", instance: str = "i1") -> None:
        for subject in task_subjects(t.namespace, t.name, t.labels):
            self.put(subject, beat(t, instance), {"Nats-TTL": ttl})


# -- messages and subjects ------------------------------------------------------------------


def test_a_task_is_checked_as_a_service_is() -> None:
    assert task(address="::ffff:10.0.0.1").address == "::ffff:a00:1"  # one spelling
    assert list(task(labels={"b": "1", "a": "2"}).labels) == ["a", "b"]
    bad_fields: list[dict[str, Any]] = [
        {"address": "10.0.0.300"},
        {"address": "web.example.com"},
        {"labels": {"app web": "x"}},
        {"labels": {f"k{i}": "v" for i in range(17)}},
        {"name": "a.b"},
        {"cluster": "*"},
    ]
    for bad in bad_fields:
        with pytest.raises(ValueError, match="validation error"):
            task(**bad)


def test_messages_round_trip_and_refuse_what_they_cannot_read() -> None:
    withdrawn = TaskWithdrawn(instance="i1", namespace="shop", name="web-1")
    assert decode_task_message(encode_task_message(withdrawn)) == withdrawn
    cases = {
        b"\xc1": "not msgpack",
        msgpack.packb([1, 2]): "expected a map",
        msgpack.packb({"type": "TaskHeartbeat"}): "missing string 'type' or integer 'version'",
        msgpack.packb({"type": "Nope", "version": 1}): "unknown event type",
        msgpack.packb({"type": "TaskHeartbeat", "version": 3}): "newer than this reader",
        msgpack.packb({"type": "TaskHeartbeat", "version": 1}): "instance",
        b"\x80" * (MAX_TASK_BYTES + 1): "more than a task message may hold",
    }
    for data, reason in cases.items():
        with pytest.raises(DecodeError, match=reason):
            decode_task_message(data)


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=80)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_VALID = TaskHeartbeat(instance="i1", since=NOW, task=task()).model_dump(mode="json")
_FIELDS = ["type", "version", "instance", "since", "task"]
_TASK_FIELDS = [
    "namespace",
    "name",
    "labels",
    "address",
    "cluster",
    "ready",
    "ports",
    "draining",
    "reason",
    "extra",
]


@st.composite
def hostile_heartbeats(draw: st.DrawFn) -> bytes:
    """A heartbeat with some of its fields (or its task's) replaced by anything."""
    raw = {**_VALID, "task": dict(_VALID["task"])}
    for key in draw(st.lists(st.sampled_from(_FIELDS), max_size=2)):
        raw[key] = draw(_VALUES)
    if isinstance(raw["task"], dict):
        for key in draw(st.lists(st.sampled_from(_TASK_FIELDS), max_size=3)):
            raw["task"][key] = draw(_VALUES)
    return msgpack.packb(raw)


@settings(max_examples=300)
@given(st.binary(max_size=600) | hostile_heartbeats())
def test_garbage_is_a_decode_error_never_a_crash(data: bytes) -> None:
    try:
        decoded = decode_task_message(data)
    except DecodeError:
        return
    assert isinstance(decoded, TaskHeartbeat)  # what decodes is a valid heartbeat


_LABEL_TEXT = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)


@given(st.one_of(st.just(""), _LABEL_TEXT))
def test_label_tokens_round_trip_and_never_split_a_subject(text: str) -> None:
    token = label_token(text)
    assert token and not any(c in token for c in ".*> \t")
    assert token_text(token) == text


def test_a_task_is_stored_once_per_label_on_subjects_that_name_it() -> None:
    labels = {"app.kubernetes.io/name": "web", "tier": ""}
    subjects = task_subjects("shop", "web-1", labels)
    assert subjects == [
        "skyflow.task.shop.web-1.app%2Ekubernetes%2Eio/name.web",
        "skyflow.task.shop.web-1.tier.%",
    ]
    assert [parse_task_subject(s) for s in subjects] == [
        ("shop", "web-1", ("app.kubernetes.io/name", "web")),
        ("shop", "web-1", ("tier", "")),
    ]
    assert task_subjects("shop", "lonely", {}) == ["skyflow.task.shop.lonely"]
    assert parse_task_subject("skyflow.task.shop.lonely") == ("shop", "lonely", None)
    assert selector_filter("shop", "app", "web") == "skyflow.task.shop.*.app.web"
    for bad in ["skyflow.task.shop", "skyflow.task.shop.a.b", "skyflow.svc.shop.a", "x..y"]:
        with pytest.raises(ValueError, match="not a task subject"):
            parse_task_subject(bad)


def test_only_a_ttl_the_server_enforces_within_an_hour_counts() -> None:
    assert [parse_ttl(v) for v in ["2", "15s", "1m", "1h"]] == [2, 15, 60, 3600]
    assert [parse_ttl(v) for v in [None, "", "never", "0", "2h", "500ms", "-1", "1.5"]] == [
        None
    ] * 8


# -- the fold -------------------------------------------------------------------------------


def test_a_version_1_heartbeat_reads_as_a_task_without_ports_in_the_fold() -> None:
    stream = Stream()
    old = {
        "type": "TaskHeartbeat",
        "version": 1,
        "instance": "i0",
        "since": "2026-11-26T04:07:55.760307Z",
        "task": {
            "namespace": "shop",
            "name": "old-1",
            "labels": {"app": "web"},
            "address": "10.0.0.9",
            "cluster": None,
            "ready": True,
        },
    }
    stream.put("skyflow.task.shop.old-1.app.web", msgpack.packb(old), {"Nats-TTL": "15"})
    (live,) = stream.view.tasks("shop")
    assert (live.ports, live.draining, live.reason, live.ready) == ({}, False, None, True)


def test_heartbeats_withdrawals_and_markers_fold_to_the_live_tasks() -> None:
    stream = Stream()
    stream.announce(task("web-1", labels={"app": "web", "v": "1"}))
    stream.announce(task("web-2", "10.0.0.2"))
    assert [t.name for t in stream.view.tasks("shop")] == ["web-1", "web-2"]
    assert [t.name for t in stream.view.carrying("shop", "v", "1")] == ["web-1"]
    # A renewal (the same bytes) changes nothing but when the task was heard.
    heard = stream.view.task(("shop", "web-2")).heard_ns  # type: ignore[union-attr]
    assert (
        stream.put(
            "skyflow.task.shop.web-2.app.web", beat(task("web-2", "10.0.0.2")), {"Nats-TTL": "2"}
        )
        is None
    )
    assert stream.view.task(("shop", "web-2")).heard_ns > heard  # type: ignore[union-attr]
    # One of web-1's two subjects expiring leaves it live on the other ...
    change = stream.put("skyflow.task.shop.web-1.app.web", b"", MARKER)
    assert change is not None and change.after is not None
    assert stream.view.carrying("shop", "app", "web")[0].name == "web-2"
    # ... and the other's withdrawal ends it.
    gone = encode_task_message(TaskWithdrawn(instance="i1", namespace="shop", name="web-1"))
    change = stream.put("skyflow.task.shop.web-1.v.1", gone, {"Nats-TTL": "1"})
    assert (
        change is not None
        and change.after is None
        and change.labels == {("app", "web"), ("v", "1")}
    )
    assert [t.name for t in stream.view.tasks()] == ["web-2"]
    assert stream.skipped == []


def test_hostile_messages_are_skipped_with_the_reason_and_take_the_subject_down() -> None:
    stream = Stream()
    stream.announce(task("web-1"))
    subject = "skyflow.task.shop.web-1.app.web"
    hostile = [
        (subject, beat(task("other")), {"Nats-TTL": "2"}, "heartbeat of shop/other"),
        (
            subject,
            beat(task("web-1", labels={"app": "api"})),
            {"Nats-TTL": "2"},
            "lacks the label app=web",
        ),
        ("skyflow.task.shop.web-1", beat(task("web-1")), {"Nats-TTL": "2"}, "unlabelled subject"),
        (subject, beat(task("web-1")), {}, "no Nats-TTL header"),
        (subject, beat(task("web-1")), {"Nats-TTL": "never"}, "Nats-TTL 'never'"),
        (subject, b"\x00garbage", {"Nats-TTL": "2"}, "not msgpack"),
        ("skyflow.task.shop.x.y", b"", {}, "not a task subject"),
    ]
    for where, data, headers, reason in hostile:
        stream.announce(task("web-1"))
        stream.put(where, data, headers)
        assert reason in str(stream.skipped[-1])
        assert where not in stream.view.by_subject  # it holds no valid heartbeat now
    assert [t.name for t in stream.view.tasks()] == ["web-1"]  # on its one good subject
    stream.put(subject, beat(task("web-1")), {"Nats-TTL": "2", "Nats-Rollup": "all"})
    assert stream.view.rolled_up


# -- endpoints --------------------------------------------------------------------------------


def web(selector: dict[str, str] | None = None, ports: tuple[Port, ...] | None = None) -> Service:
    return Service(
        namespace="shop",
        name="web",
        selector={"app": "web"} if selector is None else selector,
        ports=(Port(port=80, target_port=8080), Port(port=443, target_port=8443))
        if ports is None
        else ports,
    )


def test_a_selector_picks_tasks_whose_labels_hold_every_key() -> None:
    assert selects({"app": "web"}, {"app": "web", "v": "1"})
    assert not selects({"app": "web", "v": "2"}, {"app": "web", "v": "1"})
    assert not selects({}, {"app": "web"})  # no selector, no endpoints (as Kubernetes)
    assert index_label({"tier": "front", "app": "web"}) == ("app", "web")
    assert index_label({}) is None


def test_endpoints_are_address_target_port_by_cluster_ready_apart() -> None:
    stream = Stream()
    stream.announce(task("web-1", "10.0.0.10", cluster="eu-1"))
    stream.announce(task("web-2", "10.0.0.2", cluster="eu-1", ready=False))
    stream.announce(task("web-3", "fd00::3", cluster="eu-2"))
    stream.announce(task("web-4", "10.0.0.4", cluster=None))
    stream.announce(task("api-1", "10.0.1.1", labels={"app": "api"}))
    stream.announce(task("web-9", "10.0.9.9", namespace="other"))
    endpoints = endpoints_for(web(), stream.view.tasks())
    assert endpoints.status == "3/4"
    assert [
        (s.cluster, [a.task for a in s.ready], [a.task for a in s.not_ready])
        for s in endpoints.subsets()
    ] == [
        (None, ["web-4"], []),
        ("eu-1", ["web-1"], ["web-2"]),
        ("eu-2", ["web-3"], []),
    ]
    assert [str(e) for e in endpoints.endpoints(80)] == [
        "10.0.0.4:8080",
        "10.0.0.10:8080",
        "[fd00::3]:8080",
    ]
    assert [str(e) for e in endpoints.endpoints(443, ready=False)] == ["10.0.0.2:8443"]
    assert endpoints_cell(endpoints) == "10.0.0.4:8080,10.0.0.4:8443,10.0.0.10:8080 + 3 more..."
    assert [row[2] for row in wide_rows(endpoints)] == [
        "10.0.0.4",
        "10.0.0.2",
        "10.0.0.10",
        "fd00::3",
    ]
    assert endpoints_for(web(selector={}), stream.view.tasks()).status == "<none>"
    bare = endpoints_for(web(ports=()), stream.view.tasks())
    assert [str(e) for e in bare.endpoints()][:1] == ["10.0.0.4"]
    assert endpoints_cell(endpoints_for(web({"app": "none"}), stream.view.tasks())) == "<none>"
    assert host_port("fd00::1", None) == "fd00::1"


def test_round_robin_takes_each_in_turn_and_two_choices_prefer_the_less_loaded() -> None:
    turns = RoundRobin()
    picked = [turns.choose("web:80", ["a", "b", "c"]) for _ in range(9)]
    assert picked == ["a", "b", "c"] * 3
    load = {"busy": 100.0, "idle": 0.0, "mid": 50.0}
    rng = random.Random(7)
    counts = Counter(two_choices(list(load), load.__getitem__, rng) for _ in range(3000))
    assert counts["busy"] == 0  # it loses every draw it is in
    assert counts["idle"] > counts["mid"] > 0
    assert two_choices(["only"], load.__getitem__) == "only"
    with pytest.raises(IndexError):
        two_choices([], load.__getitem__)
