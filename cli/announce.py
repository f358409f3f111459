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
    from registry.client import Registry

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
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[-- COMMAND [ARG...]]",
            help="A program to run and stand for: announced while it runs, SIGTERM and "
            "SIGINT passed on to it, withdrawn when it exits; skyctl exits with its status.",
            show_default=False,
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Keep a task announced until Ctrl-C or SIGTERM, then withdraw it at once; or, given
    a program after --, for as long as that program runs.

    Example:  skyctl announce task web-1 -n shop -l app=web --address 10.0.0.7 -c eu-1

              skyctl announce task web-1 -n shop -l app=web -a 10.0.0.7 -- ./server --port 8080
    """
    task = _task(name, namespace, labels or [], address, cluster, not not_ready)
    seconds = parse_ttl_flag(ttl)
    if command:
        raise typer.Exit(_supervise(conn, task, seconds, command))

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
                    await _hint_if_unselected(registry, task)
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


async def _hint_if_unselected(registry: Registry, task: Task) -> None:
    """Say so when no service of the task's namespace selects it (a typo in a label is
    otherwise silent: the task is live and nobody sends it anything)."""
    from registry.discovery.endpoints import selects

    try:
        services = await registry.list(task.namespace)
    except RegistryError:
        return  # a hint is not worth failing for
    if not any(selects(r.service.selector, task.labels) for r in services):
        import sys

        from cli.terminal import safe

        labels = ",".join(f"{k}={v}" for k, v in task.labels.items()) or "<none>"
        hint = (
            f"hint: no service in namespace {task.namespace!r} selects task/{task.name} "
            f"(labels {labels}): it gets no traffic until one does"
        )
        print(safe(hint), file=sys.stderr, flush=True)


def _supervise(conn: Connection, task: Task, seconds: int, command: list[str]) -> int:
    """Run ``command``, announce ``task`` while it runs, pass SIGTERM and SIGINT on to it,
    withdraw when it exits; its exit status (128 + the signal that ended it)."""
    import signal
    import threading

    async def run() -> int:
        async with await conn.open(keep_reconnecting=True) as registry:
            try:
                # Its own session: Ctrl-C at a terminal reaches it once, through us.
                proc = await asyncio.create_subprocess_exec(*command, start_new_session=True)
            except OSError as exc:
                raise InvalidInput("command", command[0], exc.strerror or str(exc)) from None
            if threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                for passed in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(passed, proc.send_signal, passed)
            try:
                announcer = await registry.announcer()
                announcer.on_error = warn_once
                async with registry.announce(task, ttl=seconds):
                    print(
                        f"task/{task.name} announced while pid {proc.pid} runs "
                        f"(ttl {seconds}s; SIGTERM and Ctrl-C are passed on to it)",
                        flush=True,
                    )
                    await _hint_if_unselected(registry, task)
                    code = await proc.wait()
                print(f"task/{task.name} withdrawn: the program exited ({code})", flush=True)
            finally:
                if proc.returncode is None:  # we failed before it ended: it must not outlive us
                    proc.terminate()
                    await proc.wait()
        return code if code >= 0 else 128 - code

    return asyncio.run(run())


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
