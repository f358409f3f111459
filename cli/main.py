"""``skyctl``: the SkyFlow service registry on the command line.

Every error a user can cause leaves through ``main`` as one line and an exit code
(see ``cli/errors.py``); nothing a user types produces a traceback.
"""

import functools
import logging
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli.addresses import addresses_app
from cli.agent import agent_command
from cli.announce import announce_app, announce_task
from cli.apply import apply
from cli.completion import COMPLETE_VAR, completion
from cli.config import config_app
from cli.create import create_app
from cli.delete import delete_app
from cli.describe import describe_app
from cli.diff import diff
from cli.dns import dns_command
from cli.edit import edit_app
from cli.endpoints import get_endpoints
from cli.errors import EXIT_INVALID, exit_code, fail
from cli.get import get_app
from cli.history import audit_app, events, history_app
from cli.init import init
from cli.label import label_app
from cli.options import dry_run_argv
from cli.proxy import proxy_command
from cli.readiness import task_app
from cli.record import record
from cli.rollback import rollback_app
from cli.server import server
from cli.tasks import get_tasks
from cli.terminal import forget_warnings
from cli.verbs import register, summarize
from cli.version import version, version_callback
from cli.wait import wait_app
from registry.errors import RegistryError

__all__ = ["app", "main"]


def _short_eq(token: str) -> str:
    """``-o=json`` as kubectl reads it: click hands a short option ``=json`` as its value,
    and this drops the ``=`` wherever click matches a value against choices."""
    return token[1:] if token.startswith("=") else token


# The order of ``skyctl --help``, as kubectl's: within a panel, by how often it is used.
ORDER = (
    *("create", "get", "describe", "edit", "delete", "apply", "diff", "label", "rollback"),
    *("wait", "announce", "task", "dns", "proxy", "record", "agent"),
    *("history", "events", "audit"),
    *("server", "init", "addresses", "config", "completion", "version"),
)


class RootGroup(TyperGroup):
    """``skyctl`` itself: its commands listed in ``ORDER`` (typer lists commands before
    groups, whatever their panel)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(ORDER)))


app = typer.Typer(
    name="skyctl",
    cls=RootGroup,
    help="Manage SkyFlow services: stable endpoints over label-selected jobs, kept as an "
    "event log in NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": _short_eq},
)
# Grouped as kubectl groups its help: what everyone uses first, then discovery, the log,
# and the server and set-up.
BASIC, DISCOVERY, AUDIT, SETUP = (
    "Basic Commands",
    "Discovery: tasks, endpoints, DNS, proxy",
    "Audit and history",
    "Server and set-up",
)
app.add_typer(create_app, name="create", rich_help_panel=BASIC)
app.add_typer(get_app, name="get", rich_help_panel=BASIC)
app.add_typer(describe_app, name="describe", rich_help_panel=BASIC)
app.add_typer(edit_app, name="edit", rich_help_panel=BASIC)
app.add_typer(delete_app, name="delete", rich_help_panel=BASIC)
app.command(
    "apply", rich_help_panel=BASIC, short_help="Create or update services from manifests (-f)."
)(apply)
app.command(
    "diff",
    rich_help_panel=BASIC,
    short_help="Show what apply -f would change (exit 1 if it would).",
)(diff)
app.add_typer(label_app, name="label", rich_help_panel=BASIC)
app.add_typer(rollback_app, name="rollback", rich_help_panel=BASIC)
app.add_typer(wait_app, name="wait", rich_help_panel=BASIC)
# Discovery: tasks announce themselves, services resolve to their endpoints (get
# endpoints, get tasks), for programs in any language through DNS, and routed.
app.add_typer(announce_app, name="announce", rich_help_panel=DISCOVERY)
register(announce_app, announce_task, "task", short_help="Keep a task announced while it runs.")
register(get_app, get_endpoints, "endpoints", short_help="Show services' live endpoints.")
register(get_app, get_tasks, "tasks", short_help="List the live tasks of a namespace.")
app.add_typer(task_app, name="task", rich_help_panel=DISCOVERY)
app.command("dns", rich_help_panel=DISCOVERY, short_help="Answer DNS for services and tasks.")(
    dns_command
)
app.command(
    "proxy", rich_help_panel=DISCOVERY, short_help="Forward service addresses to ready endpoints."
)(proxy_command)
app.command(
    "record", rich_help_panel=DISCOVERY, short_help="Record tasks' joins, leaves and readiness."
)(record)
app.command(
    "agent",
    rich_help_panel=DISCOVERY,
    short_help="Answer this node's reads from a warm connection.",
)(agent_command)
app.add_typer(history_app, name="history", rich_help_panel=AUDIT)
app.command("events", rich_help_panel=AUDIT)(events)
app.add_typer(
    audit_app,
    name="audit",
    rich_help_panel=AUDIT,
    short_help="Verify the log's integrity; acknowledge a break.",
)
app.command("server", rich_help_panel=SETUP, short_help="Run the bundled NATS server.")(server)
app.command("init", rich_help_panel=SETUP, short_help="Create or upgrade the registry's streams.")(
    init
)
app.add_typer(addresses_app, name="addresses", rich_help_panel=SETUP)
app.add_typer(
    config_app,
    name="config",
    rich_help_panel=SETUP,
    short_help="Contexts: which server, as whom, which namespace.",
)
app.command("completion", rich_help_panel=SETUP)(completion)
app.command("version", rich_help_panel=SETUP, short_help="Print the client's version.")(version)
summarize(app)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=version_callback,
            is_eager=True,
            help="Print the client's version and exit.",
        ),
    ] = False,
) -> None:
    pass


@functools.cache
def command() -> Any:
    """The click command typer builds from ``app``, built once per process: building it
    reads every command's signature and costs tens of milliseconds, which the node agent,
    running a command per request, would otherwise pay on each."""
    return typer.main.get_command(app)


def _takes_labels(ctx: Any) -> bool:
    """Whether the command of a usage error sets labels (``--labels``): where ``-l`` once
    meant labels before it meant a selector everywhere."""
    params = getattr(getattr(ctx, "command", None), "params", [])
    return any("--labels" in getattr(param, "opts", ()) for param in params)


def main(argv: list[str] | None = None) -> None:
    # Library warnings (asyncio's, nats-py's) are not for the user of a CLI; what the
    # registry has to say reaches the user through its own messages.
    logging.basicConfig(level=logging.ERROR, format="skyctl: %(message)s")
    forget_warnings()
    if os.environ.get(COMPLETE_VAR):
        from cli.completion import prepare

        prepare()  # the shell is asking for completions: typer answers and exits
    try:
        args = dry_run_argv(sys.argv[1:] if argv is None else argv)
        # ``obj``: how ``skyctl agent`` runs the commands it hosts (this very function)
        # without importing this module, which imports it.
        result = command().main(args=args, prog_name="skyctl", standalone_mode=False, obj=main)
    except RegistryError as exc:
        fail(str(exc), exit_code(exc))
    except Exception as exc:
        # Click's usage errors. typer vendors its own click (typer._click) in newer
        # releases, so they are recognised by their shape rather than their import path.
        format_message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if not callable(format_message) or not isinstance(code, int):
            raise
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A bare group shows its help, as kubectl does (typer's rich help has been
            # printed already while building the exception; plain click's has not).
            if format_message().strip():
                print(format_message())
            raise SystemExit(0) from None
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if getattr(exc, "option_name", None) == "-l" and _takes_labels(ctx):
            hint = " (-l is a label selector, as in kubectl; a new object's labels are --labels)"
        fail(f"{format_message()}{hint}", EXIT_INVALID if code == 2 else code)
    if isinstance(result, int) and result:
        raise SystemExit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
