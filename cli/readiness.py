"""``skyctl task ready|not-ready|drain NAME``: change a live task's readiness by hand.

The task's announcer holds its heartbeat, so the request goes to it, through the server
(``skyflow.control.<namespace>.<name>``), and the answer comes once the changed
heartbeat is stored: when the command returns, ``get endpoints``, the Resolver, DNS and
the proxy are already being told. Who may ask is the server's decision: the namespace's
announcers and admins (``docs/security.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import TaskNamespaceOpt
from cli.parse import parse_name
from cli.terminal import safe
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from events.control import ReadinessAction
    from events.task import Task

__all__ = ["task_app"]

task_app = typer.Typer(
    help="Change a live task's readiness: ready, not-ready, drain.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The live task.", show_default=False)]
_MAX_REASON = 120


def _reason_option(help: str) -> object:
    return typer.Option("--reason", metavar="TEXT", help=help)


@connection_options
def ready(
    name: NameArg,
    namespace: TaskNamespaceOpt = "default",
    reason: Annotated[str | None, _reason_option("Why (kept in its history).")] = None,
    *,
    conn: Connection,
) -> None:
    """Let a task take traffic again.

    Ends a drain and a not-ready set by hand; a failing health check still keeps it out.

    Example:  skyctl task ready web-1 -n shop
    """
    _ask(conn, name, namespace, "ready", reason)


@connection_options
def not_ready(
    name: NameArg,
    namespace: TaskNamespaceOpt = "default",
    reason: Annotated[str | None, _reason_option("Why: shown with the task.")] = None,
    *,
    conn: Connection,
) -> None:
    """Stop sending a task new traffic.

    It stays listed, not ready, until 'skyctl task ready'.

    Example:  skyctl task not-ready web-1 -n shop --reason "investigating INC-42"
    """
    _ask(conn, name, namespace, "not-ready", reason)


@connection_options
def drain(
    name: NameArg,
    namespace: TaskNamespaceOpt = "default",
    reason: Annotated[str | None, _reason_option("Why: shown with the task.")] = None,
    *,
    conn: Connection,
) -> None:
    """Drain a task before it leaves: no new connections reach it.

    Open connections complete. It stays listed as draining (Kubernetes' terminating
    endpoint, Consul's maintenance mode) until it is withdrawn or set ready again.

    Example:  skyctl task drain web-1 -n shop --reason "deploy v2"
    """
    _ask(conn, name, namespace, "drain", reason)


def _ask(conn: Connection, name: str, namespace: str, action: str, reason: str | None) -> None:
    from events.control import ReadinessAction

    name = parse_name(name)
    namespace = parse_name(namespace, "namespace")
    bad = reason is not None and (
        not reason.strip() or not reason.isprintable() or len(reason) > _MAX_REASON
    )
    if bad:
        why = f"must be one printable line of at most {_MAX_REASON} characters"
        raise InvalidInput("--reason", reason, why)
    chosen = ReadinessAction(action)

    async def run() -> Task:
        async with await conn.open() as registry:
            return await registry.set_readiness(namespace, name, chosen, reason)

    task = run_command(run())
    print(safe(f"task/{name} {_said(chosen, task)}"))


def _said(action: ReadinessAction, task: Task) -> str:
    from events.control import ReadinessAction

    if task.draining:
        return f"draining ({task.reason})"
    if task.ready:
        return "ready"
    if action is ReadinessAction.READY:  # asked, but something else still says no
        return f"still not ready ({task.reason})"
    return f"not ready ({task.reason})"


task_app.command("ready")(ready)
task_app.command("not-ready")(not_ready)
task_app.command("drain")(drain)
