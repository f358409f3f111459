"""``skyctl``: the SkyFlow service registry on the command line.

Every error a user can cause leaves through ``main`` as one line and an exit code
(see ``cli/errors.py``); nothing a user types produces a traceback.
"""

import logging
import os
import sys
from typing import Annotated

import typer

from cli.addresses import addresses_app
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
from cli.verbs import register
from cli.version import version, version_callback
from cli.wait import wait_app
from registry.errors import RegistryError

__all__ = ["app", "main"]


def _short_eq(token: str) -> str:
    """``-o=json`` as kubectl reads it: click hands a short option ``=json`` as its value,
    and this drops the ``=`` wherever click matches a value against choices."""
    return token[1:] if token.startswith("=") else token


app = typer.Typer(
    name="skyctl",
    help="Manage SkyFlow services: stable endpoints over label-selected jobs, kept as an "
    "event log in NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "token_normalize_func": _short_eq},
)
app.add_typer(create_app, name="create")
app.add_typer(get_app, name="get")
app.add_typer(delete_app, name="delete")
app.command("apply")(apply)
app.command("diff")(diff)
app.add_typer(rollback_app, name="rollback")
app.add_typer(wait_app, name="wait")
app.add_typer(edit_app, name="edit")
app.add_typer(label_app, name="label")
app.add_typer(describe_app, name="describe")
app.add_typer(history_app, name="history")
app.command("events")(events)
app.add_typer(audit_app, name="audit")
app.add_typer(addresses_app, name="addresses")
app.command("server")(server)
app.command("init")(init)
app.command("version")(version)
app.command("completion")(completion)
app.add_typer(config_app, name="config")
# Discovery: tasks announce themselves, services resolve to their endpoints.
app.add_typer(announce_app, name="announce")
register(announce_app, announce_task, "task")
register(get_app, get_endpoints, "endpoints")
register(get_app, get_tasks, "tasks")
app.add_typer(task_app, name="task")
# DNS: the same endpoints, for programs in any language.
app.command("dns")(dns_command)
app.command("proxy")(proxy_command)
app.command("record")(record)


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
        result = app(args=args, prog_name="skyctl", standalone_mode=False)
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
        fail(f"{format_message()}{hint}", EXIT_INVALID if code == 2 else code)
    if isinstance(result, int) and result:
        raise SystemExit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
