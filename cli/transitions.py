"""Membership transitions as ``events --for task/NAME`` and ``describe service`` print
them: a row each (when, what, the run, and what it says), or their JSON object."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, assert_never

from cli.render import camel_keys, short_time

if TYPE_CHECKING:
    from events.membership import Transition
    from events.task import Task

__all__ = ["TRANSITION_COLUMNS", "transition_object", "transition_row"]

TRANSITION_COLUMNS = ("TIME", "TASK", "TRANSITION", "READY", "DETAILS")


def _ready(task: Task) -> str:
    return "draining" if task.draining else "true" if task.ready else "false"


def _details(event: Transition) -> str:
    from events.membership import TaskJoined, TaskLeft, TaskReadinessChanged

    match event:
        case TaskJoined(task=task):
            labels = ",".join(f"{k}={v}" for k, v in task.labels.items()) or "<none>"
            ports = ",".join(f"{k}={v}" for k, v in task.ports.items())
            text = f"address {task.address}, labels {labels}"
            text += f", ports {ports}" if ports else ""
            text += f" (not ready: {task.reason})" if task.reason else ""
        case TaskReadinessChanged(task=task):
            text = task.reason or "ready"
        case TaskLeft(how=how, reason=reason):
            text = how + (f": {reason}" if reason else "")
            if how == "expired":
                text += " (its heartbeats stopped: a killed announcer or a lost host)"
        case _:
            assert_never(event)
    if not event.exact:
        after = short_time(event.after) if event.after is not None else "?"
        text += f" [found late: between {after} and {short_time(event.at)}]"
    text += f" (instance {event.instance[:12]})"
    return text


def _kind(event: Transition) -> str:
    return {"TaskJoined": "joined", "TaskReadinessChanged": "readiness", "TaskLeft": "left"}[
        event.type
    ]


def transition_row(event: Transition) -> list[str]:
    ready = "-" if event.type == "TaskLeft" else _ready(event.task)
    return [short_time(event.at), event.task.name, _kind(event), ready, _details(event)]


def transition_object(event: Transition, stored: datetime | None = None) -> dict[str, Any]:
    """The transition as stored (its schema: docs/events.md, printed in camelCase as all
    of skyctl's objects), and when it was recorded."""
    obj: dict[str, Any] = camel_keys(event.model_dump(mode="json"))
    if stored is not None:
        obj["recorded"] = stored.isoformat().replace("+00:00", "Z")
    return obj
