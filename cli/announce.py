"""``skyctl announce task NAME``: keep a task announced until Ctrl-C or SIGTERM.

It heartbeats at a third of the TTL and, when stopped, withdraws the task at once.
Killed (SIGKILL, a crash, the machine gone), it withdraws nothing: the server forgets the
task when the TTL of its last heartbeat runs out, and every reader is told.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command, run_until_stopped
from cli.options import TaskNamespaceOpt
from cli.parse import (
    parse_name,
    parse_named_ports,
    parse_seconds,
    parse_selector,
    parse_ttl_flag,
)
from cli.terminal import warn_once
from cli.verbs import verb_app
from events.liveness import MAX_TASK_LABELS
from registry.errors import InvalidInput, RegistryError

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from events.task import Task
    from registry.client import Registry
    from registry.discovery.checks import Check
    from registry.discovery.keeper import TaskKeeper

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
        typer.Option(
            "--not-ready",
            help="Announce it as not ready: listed, but sent no traffic until 'skyctl task ready'.",
        ),
    ] = False,
    ports: Annotated[
        list[str] | None,
        typer.Option(
            "--port",
            "-p",
            metavar="NAME=PORT",
            help="A named port of the task (http=8080); a service whose targetPort is "
            "that name sends its traffic there. Repeat it or separate with commas.",
        ),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            metavar="CHECK",
            help="A health check that sets the task's readiness: http://HOST:PORT/PATH "
            "(200-399 passes), tcp:HOST:PORT (a connection opens) or exec:COMMAND (exits "
            "0). Not ready until it passes.",
        ),
    ] = None,
    check_interval: Annotated[
        str,
        typer.Option("--check-interval", metavar="DURATION", help="Time between checks."),
    ] = "10s",
    check_timeout: Annotated[
        str,
        typer.Option("--check-timeout", metavar="DURATION", help="How long one check may take."),
    ] = "2s",
    fail_after: Annotated[
        int,
        typer.Option(
            "--fail-after", metavar="N", help="Failed checks in a row that make it not ready."
        ),
    ] = 3,
    pass_after: Annotated[
        int,
        typer.Option(
            "--pass-after", metavar="N", help="Passed checks in a row that make it ready."
        ),
    ] = 1,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Take the name over from another announcer that keeps it live (one "
            "killed before its TTL ran out, say); refused otherwise.",
        ),
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

    Example:  skyctl announce task web-1 -n shop --labels app=web --address 10.0.0.7 -c eu-1

              skyctl announce task web-1 -n shop --labels app=web -a 10.0.0.7 -- ./server

              skyctl announce task web-2 -n shop --labels app=web -a 10.0.0.7 -p http=8081 \
                --check http://10.0.0.7:8081/healthz --check-interval 5s
    """
    task = _task(name, namespace, labels or [], address, cluster, not not_ready, ports or [])
    seconds = parse_ttl_flag(ttl)
    chosen_check = None
    if check is not None:
        from registry.discovery.checks import parse_check

        chosen_check = parse_check(
            check,
            interval=parse_seconds(check_interval, "--check-interval"),
            timeout=parse_seconds(check_timeout, "--check-timeout"),
            fail_after=fail_after,
            pass_after=pass_after,
        )
    how = _How(seconds, chosen_check, replace)
    if command:
        raise typer.Exit(_supervise(conn, task, how, command))

    async def run() -> None:
        async with await conn.open(keep_reconnecting=True, writes=True) as registry:
            announcer = await registry.announcer()
            announcer.on_error = warn_once
            entered = False
            try:
                async with how.announce(registry, task) as keeper:
                    entered = True
                    print(
                        f"task/{name} announced{_state(keeper.task)} (ttl {seconds}s, renewed "
                        f"every {round(seconds / 3, 2):g}s; Ctrl-C withdraws it)",
                        flush=True,
                    )
                    await _hint_if_unselected(registry, task)
                    keeper.leaving = "announcer stopped"
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


@dataclass(frozen=True)
class _How:
    """How the task is announced: its TTL, its check, whether it takes the name over."""

    ttl: int
    check: Check | None
    replace: bool

    def announce(self, registry: Registry, task: Task) -> AbstractAsyncContextManager[TaskKeeper]:
        return registry.announce(task, ttl=self.ttl, check=self.check, replace=self.replace)


def _state(task: Task) -> str:
    """`` (not ready: why)`` for a task announced not ready; nothing for a ready one."""
    if task.ready:
        return ""
    from cli.terminal import safe

    return safe(f" (not ready: {task.reason})" if task.reason else " (not ready)")


def _supervise(conn: Connection, task: Task, how: _How, command: list[str]) -> int:
    """Run ``command``, announce ``task`` while it runs, pass SIGTERM and SIGINT on to it,
    withdraw when it exits; its exit status (128 + the signal that ended it)."""
    import signal
    import threading

    async def run() -> int:
        async with await conn.open(keep_reconnecting=True, writes=True) as registry:
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
                async with how.announce(registry, task) as keeper:
                    print(
                        f"task/{task.name} announced{_state(keeper.task)} while pid "
                        f"{proc.pid} runs (ttl {how.ttl}s; SIGTERM and Ctrl-C are passed "
                        "on to it)",
                        flush=True,
                    )
                    await _hint_if_unselected(registry, task)
                    code = await proc.wait()
                    keeper.leaving = _exit_reason(code)
                print(f"task/{task.name} withdrawn: the program exited ({code})", flush=True)
            finally:
                if proc.returncode is None:  # we failed before it ended: it must not outlive us
                    proc.terminate()
                    await proc.wait()
        return code if code >= 0 else 128 - code

    return run_command(run())


def _exit_reason(code: int) -> str:
    """How a supervised program ended, for the withdrawal (and the membership history)."""
    if code >= 0:
        return f"program exited with status {code}"
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"program killed by {name}"


def _task(
    name: str,
    namespace: str,
    labels: list[str],
    address: str,
    cluster: str | None,
    ready: bool,
    ports: list[str],
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
        ports=parse_named_ports(ports),
    )
