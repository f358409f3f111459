"""The verb groups of ``skyctl``, with kubectl's aliases for their nouns (``svc``,
``services``, ``ep``); the options the verbs share are in ``cli.options``."""

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["ALIASES", "NOUNS", "VerbGroup", "register", "verb_app"]

NOUNS = ("service", "services", "svc")
ALIASES = {
    "services": "service",
    "svc": "service",
    # Discovery's nouns, each taken only where its verb has it.
    "endpoint": "endpoints",
    "ep": "endpoints",
    "task": "tasks",
    "tasks": "task",
}


class VerbGroup(TyperGroup):
    """A verb's nouns, with kubectl's aliases (``svc``, ``services``) resolved by name:
    registering each alias as a command of its own would make typer build it again on
    every run, which a one-shot command pays for in start-up time."""

    # (click's types are typer's private copy in some releases, so not named here.)
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        alias = ALIASES.get(cmd_name)
        if alias is not None and alias in self.commands:
            cmd_name = alias
        return super().get_command(ctx, cmd_name)


def verb_app(help: str, *, files: bool = False) -> typer.Typer:
    """A verb's group; with ``files``, the verb also acts on ``-f`` manifests itself."""
    return typer.Typer(help=help, no_args_is_help=True, cls=VerbGroup, invoke_without_command=files)


def register(
    app: typer.Typer, command: Callable[..., Any], noun: str = "service", **kwargs: Any
) -> None:
    aliases = ", ".join(alias for alias, name in ALIASES.items() if name == noun)
    epilog = f"Aliases of {noun}: {aliases}." if aliases else None
    app.command(noun, epilog=epilog, **kwargs)(command)
