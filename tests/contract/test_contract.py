"""docs/events.md is the contract for other languages: keep it true to the models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgpack

from events import (
    STREAM_NAME,
    SUBJECTS,
    AddressAllocated,
    AddressReleased,
    Holder,
    NodePortRange,
    Origin,
    Overridden,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    StreamSpec,
    decode,
)
from events.envelope import EventEnvelope
from events.service import Port, Service

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "events.md").read_text()


def documented_fields(heading: str) -> set[str]:
    """Backticked field names in the first column of the table under ``heading``."""
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.MULTILINE))


def test_envelope_fields_are_documented() -> None:
    assert documented_fields("Fields every event has") == set(EventEnvelope.model_fields) | {
        "type",
        "version",
    }


def test_service_created_fields_are_documented() -> None:
    expected = {f"service.{name}" for name in Service.model_fields}
    assert documented_fields("### `ServiceCreated` v5") == expected
    for name in Port.model_fields:
        assert f'"{name}"' in DOC


def test_service_updated_and_status_fields_are_documented() -> None:
    origin = {f"created.{name}" for name in Origin.model_fields}
    assert documented_fields("### `ServiceUpdated` v4") == {"service", "status"} | origin
    assert (
        documented_fields("### `ServiceStatusChanged` v3")
        == {
            "service",
            "status.load_balancer.ingress",
        }
        | origin
    )


def test_address_record_fields_are_documented() -> None:
    own = set(AddressAllocated.model_fields) - set(EventEnvelope.model_fields)
    own -= {"type", "version", "holder"}
    own |= {f"holder.{name}" for name in Holder.model_fields}
    assert documented_fields("### `AddressAllocated` v1 and `AddressReleased` v1") == own
    assert set(AddressReleased.model_fields) == set(AddressAllocated.model_fields)
    ranges = {"service_cidr"} | {f"node_ports.{n}" for n in NodePortRange.model_fields}
    assert documented_fields("### `AddressRangesSet` v1") == ranges


def test_service_deleted_fields_are_documented() -> None:
    own = set(ServiceDeleted.model_fields) - set(EventEnvelope.model_fields) - {"type", "version"}
    assert documented_fields("### `ServiceDeleted` v1") == own


def test_service_force_deleted_fields_are_documented() -> None:
    own = set(ServiceForceDeleted.model_fields) - set(EventEnvelope.model_fields)
    own -= {"type", "version", "overrides"}
    own |= {f"overrides.{name}" for name in Overridden.model_fields}
    assert documented_fields("### `ServiceForceDeleted` v1") == own


def test_stream_settings_are_documented() -> None:
    assert f"`{STREAM_NAME}`" in DOC and f"`{SUBJECTS}`" in DOC
    spec = StreamSpec()
    for key in spec.required:
        if key != "sealed":
            assert f"`{key}`" in DOC, key
    assert f"{spec.duplicate_window_s:.0f} s" in DOC


def test_the_example_event_decodes() -> None:
    example = DOC.split("```json\n", 1)[1].split("```", 1)[0]
    event = decode(msgpack.packb(json.loads(example)))
    assert isinstance(event, ServiceCreated)
    assert event.service.name == "myService"


def test_the_documented_javascript_subscriber_is_the_tested_example() -> None:
    snippet = DOC.split("```js\n", 1)[1].split("```", 1)[0]
    example = (
        Path(__file__).resolve().parents[2] / "examples" / "js" / "subscriber.mjs"
    ).read_text()
    assert [line for line in snippet.splitlines() if line.strip() and line not in example] == []


# -- the liveness stream -----------------------------------------------------------------


def test_task_message_fields_are_documented() -> None:
    from events.task import Task, TaskHeartbeat, TaskWithdrawn

    heartbeat = set(TaskHeartbeat.model_fields) - {"type", "version", "task"}
    heartbeat |= {f"task.{name}" for name in Task.model_fields}
    assert documented_fields("### `TaskHeartbeat` v2") == heartbeat
    assert documented_fields("### `TaskWithdrawn` v2") == set(TaskWithdrawn.model_fields) - {
        "type",
        "version",
    }


def test_liveness_stream_settings_are_documented() -> None:
    from events.liveness import MARKER_TTL_S, MAX_TASK_LABELS, MAX_TTL_S, TasksSpec

    section = DOC.split("## Live tasks: the liveness stream", 1)[1].split("\n## ", 1)[0]
    config = TasksSpec().config()
    assert f"`{config['name']}`" in section
    assert all(f"`{subject}`" in section for subject in config["subjects"])
    for key in ("allow_msg_ttl", "max_msgs_per_subject", "subject_delete_marker_ttl", "max_age"):
        assert f"`{key}`" in section, key
    assert config["max_msgs_per_subject"] == 1 and "| `max_msgs_per_subject` | `1` |" in section
    assert f"| `subject_delete_marker_ttl` | {MARKER_TTL_S} s |" in section
    assert f"| `max_age` | {MAX_TTL_S} s |" in section
    assert f"at most {MAX_TASK_LABELS} labels" in section


def test_the_example_heartbeat_decodes_and_lives_on_its_subject() -> None:
    from events.liveness import task_subjects
    from events.task import TaskHeartbeat, decode_task_message

    section = DOC.split("### `TaskHeartbeat` v2", 1)[1].split("\n### ", 1)[0]
    example = "\n".join(
        line[4:] for line in section.splitlines() if line.startswith("    ")
    )  # the indented block
    beat = decode_task_message(msgpack.packb(json.loads(example)))
    assert isinstance(beat, TaskHeartbeat)
    task = beat.task
    (subject,) = task_subjects(task.namespace, task.name, dict(task.labels))
    assert f"stored on `{subject}`" in section


# -- the membership stream and readiness requests -------------------------------------


def test_membership_and_readiness_fields_are_documented() -> None:
    from events.control import ReadinessReply, ReadinessRequest
    from events.membership import RecordingResumed, TaskJoined, TaskLeft, TaskReadinessChanged

    common = {"at", "source_seq", "instance", "exact", "after"}
    assert documented_fields("Every transition has these fields") >= common
    for heading, model in (
        ("### `TaskJoined` v1", TaskJoined),
        ("### `TaskReadinessChanged` v1", TaskReadinessChanged),
        ("### `TaskLeft` v1", TaskLeft),
    ):
        assert documented_fields(heading) == set(model.model_fields) - common - {
            "type",
            "version",
        }, heading
    for heading, other in (
        ("### `RecordingResumed` v1", RecordingResumed),
        ("### `ReadinessRequest` v1", ReadinessRequest),
        ("### `ReadinessReply` v1", ReadinessReply),
    ):
        assert documented_fields(heading) == set(other.model_fields) - {"type", "version"}


def test_membership_stream_settings_are_documented() -> None:
    from events.membership import MembershipSpec

    section = DOC.split("## Who served when: the membership stream", 1)[1].split("\n## ", 1)[0]
    config = MembershipSpec().config()
    assert f"`{config['name']}`" in section
    assert all(f"`{subject}`" in section for subject in config["subjects"])
    assert config["max_age"] == 30 * 86400 * 10**9 and "30 days" in section
    for key in ("allow_direct", "deny_delete", "deny_purge", "max_age"):
        assert f"`{key}`" in section, key
