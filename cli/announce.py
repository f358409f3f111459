"""``skyctl announce task NAME``: keep a task announced until Ctrl-C or SIGTERM.

It heartbeats at a third of the TTL and, when stopped, withdraws the task at once.
Killed (SIGKILL, a crash, the machine gone), it withdraws nothing: the server forgets the
task when the TTL of its last heartbeat runs out, and every reader is told.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_until_stopped
from cli.options import TaskNamespaceOpt
from cli.parse import parse_name, parse_selector, parse_ttl_flag
from cli.terminal import warn_once
from cli.verbs import verb_app
from events.liveness import MAX_TASK_LABELS
from registry.errors import InvalidInput, RegistryError

if TYPE_CHECKING:
    from events.task import Task

__all__ = ["announce_app", "parse_address"]

announce_app = verb_app("Announce a resource: keep it live until stopped.")


def parse_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput("address", text, "must be an IPv4 or IPv6 address") from None


@connection_options
def announce_task(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Task name.", show_default=False)],
    address: Annotated[
        str,
        typer.Option("--address", "-a", metavar="IP", help="Where the task takes traffic."),
    ],
    namespace: TaskNamespaceOpt = "default",
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--labels",
            "-l",
            metavar="KEY=VALUE",
            help=f"The task's labels (services select by them); repeat it or separate "
            f"with commas; at most {MAX_TASK_LABELS}.",
        ),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", "-c", help="The cluster the task runs in.")
    ] = None,
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="How long the server keeps the task after its last heartbeat (whole "
            "seconds: 15s, 2m); heartbeats go out at a third of it.",
        ),
    ] = "15s",
    not_ready: Annotated[
        bool,
        typer.Option("--not-ready", help="Announce it as not ready: listed, but sent no traffic."),
    ] = False,
    *,
    conn: Connection,
) -> None:
    """Keep a task announced until Ctrl-C or SIGTERM, then withdraw it at once.

    Example:  skyctl announce task web-1 -n shop -l app=web --address 10.0.0.7 -c eu-1
    """
    task = _task(name, namespace, labels or [], address, cluster, not not_ready)
    seconds = parse_ttl_flag(ttl)

    async def run() -> None:
        async with await conn.open(keep_reconnecting=True) as registry:
            announcer = await registry.announcer()
            announcer.on_error = warn_once
            entered = False
            try:
                async with registry.announce(task, ttl=seconds):
                    entered = True
                    print(
                        f"task/{name} announced (ttl {seconds}s, renewed every "
                        f"{round(seconds / 3, 2):g}s; Ctrl-C withdraws it)",
                        flush=True,
                    )
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                print(f"task/{name} withdrawn", flush=True)
                raise
            except RegistryError as exc:
                if not entered:
                    raise
                warn_once(
                    f"task/{name} not withdrawn ({exc}); the server forgets it when its "
                    f"{seconds}s TTL runs out"
                )

    run_until_stopped(run)


def _task(
    name: str,
    namespace: str,
    labels: list[str],
    address: str,
    cluster: str | None,
    ready: bool,
) -> Task:
    """Every flag checked, each failure naming its value, before anything is sent."""
    from events.task import Task

    chosen = parse_selector(labels, what="label")
    if len(chosen) > MAX_TASK_LABELS:
        raise InvalidInput(
            "labels",
            ",".join(f"{k}={v}" for k, v in chosen.items()),
            f"at most {MAX_TASK_LABELS} (each label is one more message per heartbeat)",
        )
    return Task(
        namespace=parse_name(namespace, "namespace"),
        name=parse_name(name),
        labels=chosen,
        address=parse_address(address),
        cluster=parse_name(cluster, "cluster") if cluster is not None else None,
        ready=ready,
    )
