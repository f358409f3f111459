"""JSON Schemas of the events and of the liveness stream's task messages, generated from
the models, for subscribers in other languages.

The schema describes the decoded msgpack map (msgpack and JSON share the data model for
the plain types events use). Regenerate after changing a model:

    python -m events.schema            # writes events/schemas/<Type>.v<N>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from events.codec import ADDRESS_MODELS, ALL_MODELS, CURRENT_VERSIONS
from events.control import ReadinessReply, ReadinessRequest
from events.liveness import CONTROL_PREFIX, TASK_PREFIX, TASKS_STREAM
from events.membership import (
    MEMBERSHIP_PREFIX,
    MEMBERSHIP_STREAM,
    RECORDER_SUBJECT,
    RecordingResumed,
    TaskJoined,
    TaskLeft,
    TaskReadinessChanged,
)
from events.subjects import ACKNOWLEDGED_SUBJECT, RANGES_SUBJECT
from events.task import TaskHeartbeat, TaskWithdrawn

__all__ = ["SCHEMA_DIR", "render", "schemas"]

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per event type at its current version, and one per
    message type of the liveness stream."""
    result = {}
    for event_type, model in ALL_MODELS.items():
        version = CURRENT_VERSIONS[event_type]
        if event_type in ADDRESS_MODELS:
            subject = "skyflow.addr.<ip|nodeport>.<address>"
        elif event_type == "AddressRangesSet":
            subject = RANGES_SUBJECT
        elif event_type == "ResourceQuotaSet":
            subject = "skyflow.quota.<namespace>"
        elif event_type == "ServiceStatusSet":
            subject = "skyflow.status.<namespace>.<name>"
        elif event_type == "QuotaUsage":
            subject = "skyflow.usage.<namespace>"
        elif event_type == "BreakAcknowledged":
            subject = ACKNOWLEDGED_SUBJECT
        else:
            subject = "skyflow.svc.<namespace>.<name>"
        where = f"in the stream SKYFLOW_SERVICES on the subject {subject}"
        result[f"{event_type}.v{version}.json"] = _schema(event_type, version, model, where)
    for message in (TaskHeartbeat, TaskWithdrawn):
        kind = message.model_fields["type"].default
        version = message.model_fields["version"].default
        where = (
            f"in the stream {TASKS_STREAM} on each subject "
            f"{TASK_PREFIX}.<namespace>.<name>.<label key>.<label value> of the task "
            f"({TASK_PREFIX}.<namespace>.<name> for a task without labels)"
        )
        result[f"{kind}.v{version}.json"] = _schema(kind, version, message, where)
    for transition in (TaskJoined, TaskReadinessChanged, TaskLeft):
        kind = transition.model_fields["type"].default
        where = (
            f"in the stream {MEMBERSHIP_STREAM} on the subject "
            f"{MEMBERSHIP_PREFIX}.<namespace>.<name> of the task"
        )
        result[f"{kind}.v1.json"] = _schema(kind, 1, transition, where)
    where = f"in the stream {MEMBERSHIP_STREAM} on the subject {RECORDER_SUBJECT}"
    result["RecordingResumed.v1.json"] = _schema("RecordingResumed", 1, RecordingResumed, where)
    for control in (ReadinessRequest, ReadinessReply):
        kind = control.model_fields["type"].default
        where = (
            f"a NATS request (and its reply) on {CONTROL_PREFIX}.<namespace>.<name>, "
            "answered by the task's announcer"
        )
        result[f"{kind}.v1.json"] = _schema(kind, 1, control, where)
    return result


def _schema(kind: str, version: int, model: type[BaseModel], where: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://skyflow.io/schemas/{kind}.v{version}.json"
    schema["description"] = (
        f"{kind} version {version}: one msgpack map {where}. " + (model.__doc__ or "").strip()
    )
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))
        print(f"wrote {SCHEMA_DIR / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
