"""``skyctl get tasks``: the live tasks, with their labels, address, cluster, readiness,
and how long ago the server stored their last heartbeat."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, connection_options
from cli.errors import fail
from cli.options import (
    Output,
    TaskNamespaceOpt,
    all_namespaces_option,
    label_selector_option,
    output_option,
)
from cli.parse import parse_name
from cli.render import API_VERSION, Table, human_age, to_json, to_yaml
from events.stamps import format_time
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.selector import Selector
    from registry.discovery.tasks import LiveTask

__all__ = ["get_tasks", "task_object"]

# kubectl's way: NAMESPACE only with -A, first.
COLUMNS = ("NAME", "READY", "ADDRESS", "CLUSTER", "LABELS", "HEARTBEAT")
WIDE_COLUMNS = (*COLUMNS, "TTL", "AGE", "INSTANCE")


@connection_options
def get_tasks(
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="One task, by name.", show_default=False),
    ] = None,
    namespace: TaskNamespaceOpt = "default",
    all_namespaces: Annotated[bool, all_namespaces_option("Tasks of every namespace.")] = False,
    selector: Annotated[str | None, label_selector_option("tasks")] = None,
    output: Annotated[Output, output_option(*Output)] = Output.table,
    *,
    conn: Connection,
) -> None:
    """List the live tasks of a namespace: what announced itself and has not expired.

    HEARTBEAT is how long ago the server stored the task's last heartbeat; a task whose
    announcer stops is gone once its TTL runs out.

    Example:  skyctl get tasks -n shop -l app=web

              skyctl get task web-1 -n shop -o yaml
    """
    namespace = parse_name(namespace, "namespace")
    if name is not None:
        name = parse_name(name)
        if all_namespaces:
            raise InvalidInput(
                "--all-namespaces", name, "a task is got by name in one namespace (-n), not -A"
            )
    chosen: Selector | None = None
    if selector is not None:
        from cli.selector import parse_label_selector

        chosen = parse_label_selector(selector)
    scope = None if all_namespaces else namespace
    label = _equality(chosen)

    async def read() -> list[LiveTask]:
        async with await conn.open() as registry:
            return await registry.tasks(scope, label=label)

    tasks = [t for t in asyncio.run(read()) if chosen is None or chosen.matches(t.labels)]
    if name is not None:
        tasks = [t for t in tasks if t.name == name]
        if not tasks:
            fail(f'task "{name}" not found in namespace "{namespace}" (or its TTL ran out)', 1)
        if output in (Output.json, Output.yaml):  # the object itself, as kubectl prints one
            obj = task_object(tasks[0])
            print(to_json(obj) if output is Output.json else to_yaml(obj))
            return
    if not tasks and output in (Output.table, Output.wide):
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    print(render(tasks, output, all_namespaces=all_namespaces))


def _equality(selector: Selector | None) -> tuple[str, str] | None:
    """A ``k=v`` requirement of the selector, read on the server (the rest is matched here)."""
    if selector is None:
        return None
    from cli.selector import Operator

    for requirement in selector.requirements:
        if requirement.operator in (Operator.EQUALS, Operator.IN) and len(requirement.values) == 1:
            (value,) = requirement.values
            return requirement.key, value
    return None


def render(tasks: list[LiveTask], output: Output, *, all_namespaces: bool = False) -> str:
    now = datetime.now(UTC)
    if output is Output.name:
        return "\n".join(f"task/{t.name}" for t in tasks)
    if output in (Output.table, Output.wide):
        header: tuple[str, ...] = WIDE_COLUMNS if output is Output.wide else COLUMNS
        rows = [_row(t, now, wide=output is Output.wide) for t in tasks]
        if all_namespaces:
            header = ("NAMESPACE", *header)
            rows = [[t.namespace, *row] for t, row in zip(tasks, rows, strict=True)]
        return Table(header, rows).render(rows)
    items = [task_object(t) for t in tasks]
    obj = {"apiVersion": API_VERSION, "kind": "List", "items": items}
    return to_json(obj) if output is Output.json else to_yaml(obj)


def _row(task: LiveTask, now: datetime, *, wide: bool) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(task.labels.items())) or "<none>"
    row = [
        task.name,
        "true" if task.ready else "false",
        task.address,
        task.cluster or "<none>",
        labels,
        human_age(task.heard, now),
    ]
    if wide:
        row += [f"{task.ttl}s", human_age(task.since, now), task.instance]
    return row


def task_object(task: LiveTask) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {"name": task.name, "namespace": task.namespace, "labels": dict(task.labels)},
        "spec": {"address": task.address, "cluster": task.cluster},
        "status": {
            "ready": task.ready,
            "lastHeartbeat": format_time(task.heard),
            "ttlSeconds": task.ttl,
            "since": format_time(task.since),
            "instance": task.instance,
        },
    }
