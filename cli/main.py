"""``skyctl``: the SkyFlow service registry on the command line.

Every error a user can cause leaves through ``main`` as one line and an exit code
(see ``cli/errors.py``); nothing a user types produces a traceback.
"""

import copy
import functools
import importlib
import logging
import os
import sys
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup
from typer.models import CommandInfo

from cli.errors import EXIT_INVALID, exit_code, fail
from cli.hosted import COMPLETE_VAR
from cli.options import dry_run_argv
from cli.terminal import forget_warnings
from cli.verbs import LazyCommands, noun_name, register, summarize
from cli.version import version_callback
from registry.errors import RegistryError

__all__ = ["ORDER", "VERBS", "Verb", "app", "main"]


def _short_eq(token: str) -> str:
    """``-o=json`` as kubectl reads it: click hands a short option ``=json`` as its value,
    and this drops the ``=`` wherever click matches a value against choices."""
    return token[1:] if token.startswith("=") else token


# Grouped as kubectl groups its help: what everyone uses first, then discovery, the log,
# and the server and set-up.
BASIC, DISCOVERY, AUDIT, SETUP = (
    "Basic Commands",
    "Discovery: tasks, endpoints, DNS, proxy",
    "Audit and history",
    "Server and set-up",
)


class Verb(NamedTuple):
    """One of ``skyctl``'s commands, named rather than imported: ``target`` is
    ``"module:attribute"``, a verb group (a ``typer.Typer``) or a command function, loaded
    only when that verb runs (or a help lists it). A one-shot command spends most of its
    life importing, so ``skyctl get service web`` must not import ``dns``, ``proxy`` or
    ``history`` (``tests/cli/test_startup.py``)."""

    target: str
    panel: str
    short_help: str | None = None
    # More nouns for this verb from other modules: (noun, "module:attribute", summary).
    nouns: tuple[tuple[str, str, str], ...] = ()


# Every verb, in the order of ``skyctl --help`` (kubectl's: within a panel, by how often
# it is used). A new verb is one line here.
VERBS: dict[str, Verb] = {
    "create": Verb("cli.create:create_app", BASIC),
    "get": Verb(
        "cli.get:get_app",
        BASIC,
        nouns=(
            ("endpoints", "cli.endpoints:get_endpoints", "Show services' live endpoints."),
            ("tasks", "cli.tasks:get_tasks", "List the live tasks of a namespace."),
            ("sites", "cli.site:get_sites", "Show each site's link and lease, at the hub."),
        ),
    ),
    "describe": Verb("cli.describe:describe_app", BASIC),
    "edit": Verb("cli.edit:edit_app", BASIC),
    "delete": Verb("cli.delete:delete_app", BASIC),
    "apply": Verb("cli.apply:apply", BASIC, "Create or update services from manifests (-f)."),
    "diff": Verb("cli.diff:diff", BASIC, "Show what apply -f would change (exit 1 if it would)."),
    "label": Verb("cli.label:label_app", BASIC),
    "rollback": Verb("cli.rollback:rollback_app", BASIC),
    "wait": Verb("cli.wait:wait_app", BASIC),
    # Discovery: tasks announce themselves, services resolve to their endpoints (get
    # endpoints, get tasks), for programs in any language through DNS, and routed.
    "announce": Verb(
        "cli.announce:announce_app",
        DISCOVERY,
        nouns=(("task", "cli.announce:announce_task", "Keep a task announced while it runs."),),
    ),
    "task": Verb("cli.readiness:task_app", DISCOVERY),
    "dns": Verb("cli.dns:dns_command", DISCOVERY, "Answer DNS for services and tasks."),
    "proxy": Verb(
        "cli.proxy:proxy_command", DISCOVERY, "Forward service addresses to ready endpoints."
    ),
    "record": Verb("cli.record:record", DISCOVERY, "Record tasks' joins, leaves and readiness."),
    "agent": Verb(
        "cli.agent:agent_command", DISCOVERY, "Answer this node's reads from a warm connection."
    ),
    "ui": Verb("cli.ui:ui_command", DISCOVERY, "Serve a live web UI of the registry."),
    "history": Verb("cli.history:history_app", AUDIT),
    "events": Verb("cli.history:events", AUDIT),
    "audit": Verb(
        "cli.history:audit_app", AUDIT, "Verify the log's integrity; acknowledge a break."
    ),
    "server": Verb("cli.server:server", SETUP, "Run the bundled NATS server."),
    "init": Verb("cli.init:init", SETUP, "Create or upgrade the registry's streams."),
    "site": Verb("cli.site:site_app", SETUP),
    "addresses": Verb("cli.addresses:addresses_app", SETUP),
    "config": Verb(
        "cli.config:config_app", SETUP, "Contexts: which server, as whom, which namespace."
    ),
    "completion": Verb("cli.completion:completion", SETUP),
    "version": Verb("cli.version:version", SETUP, "Print the client's version."),
}
ORDER = tuple(VERBS)


def _resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@functools.cache
def _holder(name: str) -> tuple[typer.Typer, tuple[CommandInfo, ...]]:
    """A throwaway app holding only the verb ``name``, registered as it would be on the
    root app (panel, summary, the nouns other modules add), so typer builds its command
    exactly as it builds any other; and, for a verb group, its nouns, which typer would
    build all at once (reading each one's signature: most of a one-shot command's time
    after its imports) and ``load_verb`` builds one by one as they are looked up. Once
    per process, as the nouns are registered on the verb's own (module-level) group."""
    verb = VERBS[name]
    found = _resolve(verb.target)
    holder = typer.Typer()
    extra: dict[str, Any] = {} if verb.short_help is None else {"short_help": verb.short_help}
    if not isinstance(found, typer.Typer):
        holder.command(name, rich_help_panel=verb.panel, **extra)(found)
        summarize(holder)
        return holder, ()
    for noun, target, summary in verb.nouns:
        register(found, _resolve(target), noun, short_help=summary)
    summarize(found)
    shell = copy.copy(found)  # the group without its nouns
    shell.registered_commands = []
    holder.add_typer(shell, name=name, rich_help_panel=verb.panel, **extra)
    return holder, tuple(found.registered_commands)


def load_verb(name: str) -> Any:
    """The click command of the verb ``name``, its module imported now (and each of its
    nouns built when looked up)."""
    holder, nouns = _holder(name)
    command: Any = typer.main.get_group(holder).commands[name]
    if nouns:
        build = functools.partial(
            typer.main.get_command_from_info,
            pretty_exceptions_short=holder.pretty_exceptions_short,
            rich_markup_mode=holder.rich_markup_mode,
        )
        loaders = {noun_name(info): functools.partial(build, info) for info in nouns}
        command.commands = LazyCommands(command.commands, loaders)
    return command


class RootGroup(TyperGroup):
    """``skyctl`` itself: its verbs in ``ORDER``, each loaded only when it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        loaders = {name: functools.partial(load_verb, name) for name in VERBS}
        self.commands = LazyCommands(self.commands, loaders)

    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(self.commands, key=lambda name: rank.get(name, len(ORDER)))


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
    """The click command typer builds from ``app``, built once per process, with the verbs
    it loads on the way: the node agent, running a command per request, keeps them warm."""
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
