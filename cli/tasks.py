"""``skyctl get tasks``: the live tasks, with their labels, address, cluster, readiness,
and how long ago the server stored their last heartbeat; printed and watched as ``get
service`` is (``cli.views``)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, connection_options
from cli.errors import fail
from cli.lifetime import run_command
from cli.options import (
    Format,
    Output,
    TaskNamespaceOpt,
    all_namespaces_option,
    format_option,
    label_selector_option,
    no_headers_option,
    sort_by_option,
    watch_option,
)
from cli.parse import parse_name
from cli.render import API_VERSION, human_age
from cli.views import TABLE, Listing, WatchPrinter
from events.stamps import format_time
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.selector import Selector
    from registry.discovery.tasks import LiveTask

__all__ = ["TaskListing", "get_tasks", "task_object"]

# kubectl's way: NAMESPACE only with -A, first.
COLUMNS = ("NAME", "READY", "ADDRESS", "CLUSTER", "LABELS", "HEARTBEAT")
WIDE_COLUMNS = (*COLUMNS, "PORTS", "TTL", "AGE", "INSTANCE", "REASON")


@connection_options
def get_tasks(
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="One task, by name.", show_default=False),
    ] = None,
    namespace: TaskNamespaceOpt = "default",
    all_namespaces: Annotated[bool, all_namespaces_option("Tasks of every namespace.")] = False,
    selector: Annotated[str | None, label_selector_option("tasks")] = None,
    output: Annotated[Format, format_option(*Output)] = TABLE,
    no_headers: Annotated[bool, no_headers_option()] = False,
    sort_by: Annotated[str | None, sort_by_option("{.spec.address}")] = None,
    watch: Annotated[bool, watch_option()] = False,
    *,
    conn: Connection,
) -> None:
    """List the live tasks of a namespace: what announced itself and has not expired.

    HEARTBEAT is how long ago the server stored the task's last heartbeat; a task whose
    announcer stops is gone once its TTL runs out. With -w, each task that is announced
    (ADDED), changes (MODIFIED: its labels, address, readiness...; not a heartbeat) or is
    withdrawn or expires (DELETED) is printed as it happens.

    Example:  skyctl get tasks -n shop -l app=web

              skyctl get task web-1 -n shop -o yaml

              skyctl get tasks -n shop -w -o json
    """
    namespace = parse_name(namespace, "namespace")
    if name is not None:
        name = parse_name(name)
        if all_namespaces:
            raise InvalidInput(
                "--all-namespaces", name, "a task is got by name in one namespace (-n), not -A"
            )
    # Every flag is checked before the server is asked anything.
    view = TaskListing(output, selector, no_headers, sort_by, all_namespaces)
    scope = None if all_namespaces else namespace
    if watch:
        _watch(conn, scope, name, view)
        return
    label = _equality(view.selector)

    async def read() -> list[LiveTask]:
        async with await conn.open() as registry:
            return await registry.tasks(scope, label=label)

    tasks = view.select(run_command(read()))
    if name is not None:
        tasks = [t for t in tasks if t.name == name]
        if not tasks:
            fail(f'task "{name}" not found in namespace "{namespace}" (or its TTL ran out)', 1)
    if not tasks and view.says_when_empty:
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    view.print(tasks, single=name is not None)


def _watch(conn: Connection, namespace: str | None, name: str | None, view: TaskListing) -> None:
    from registry.discovery.follower import TasksChanged

    printer = WatchPrinter(view)

    def wanted(task: LiveTask) -> bool:
        return name is None or task.name == name

    async def run() -> None:
        async with await conn.open(keep_reconnecting=True) as registry:
            async for item in registry.follow_tasks(namespace):
                if not isinstance(item, TasksChanged):
                    printer.snapshot([t for t in item if wanted(t)])
                    continue
                for change in item.changes:
                    before, after = change.before, change.after
                    if after is None:
                        if before is not None and wanted(before):
                            printer.change("DELETED", before)
                    elif wanted(after) and (before is None or _changed(before, after)):
                        printer.change("ADDED" if before is None else "MODIFIED", after)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends, successfully
        run_command(run())


def _changed(before: LiveTask, after: LiveTask) -> bool:
    """Whether a watcher sees a change: anything of the task but its heartbeat (a renewal,
    which a fresh read of the liveness stream reports, is not one)."""
    heartbeat = ("seq", "heard_ns")
    names = [f.name for f in dataclasses.fields(before) if f.name not in heartbeat]
    return any(getattr(before, n) != getattr(after, n) for n in names)


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


class TaskListing(Listing["LiveTask"]):
    """Tasks as ``get tasks`` prints them: kubectl's shapes, the object of ``task_object``."""

    kind = "task"
    noun = "task"

    def object(self, item: LiveTask) -> dict[str, Any]:
        return task_object(item)

    def name(self, item: LiveTask) -> str:
        return item.name

    def labels(self, item: LiveTask) -> Mapping[str, str]:
        return item.labels

    def key(self, item: LiveTask) -> Hashable:
        return item.key

    def namespace(self, item: LiveTask) -> str:
        return item.namespace

    def table_header(self) -> list[str]:
        return list(WIDE_COLUMNS if self.output is Output.wide else COLUMNS)

    def table_rows(self, item: LiveTask) -> list[list[str]]:
        return [_row(item, datetime.now(UTC), wide=self.output is Output.wide)]


def _row(task: LiveTask, now: datetime, *, wide: bool) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(task.labels.items())) or "<none>"
    row = [
        task.name,
        ready_cell(task),
        task.address,
        task.cluster or "<none>",
        labels,
        human_age(task.heard, now),
    ]
    if wide:
        ports = ",".join(f"{k}={v}" for k, v in task.ports.items()) or "<none>"
        row += [
            ports,
            f"{task.ttl}s",
            human_age(task.since, now),
            task.instance,
            task.reason or "<none>",
        ]
    return row


def ready_cell(task: LiveTask) -> str:
    """READY: ``true``, ``false``, or ``draining`` (not ready, leaving on purpose)."""
    return "draining" if task.draining else "true" if task.ready else "false"


def task_object(task: LiveTask) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {"name": task.name, "namespace": task.namespace, "labels": dict(task.labels)},
        "spec": {"address": task.address, "cluster": task.cluster, "ports": dict(task.ports)},
        "status": {
            "ready": task.ready,
            "draining": task.draining,
            "reason": task.reason,
            "lastHeartbeat": format_time(task.heard),
            "ttlSeconds": task.ttl,
            "since": format_time(task.since),
            "instance": task.instance,
        },
    }
