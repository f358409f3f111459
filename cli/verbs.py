"""What every ``skyctl <verb> service`` shares: the verb groups with kubectl's aliases for
the noun, and the options every verb spells the same way."""

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

__all__ = [
    "ALIASES",
    "NOUNS",
    "NamespaceOpt",
    "Output",
    "OutputOpt",
    "VerbGroup",
    "register",
    "verb_app",
]

NOUNS = ("service", "services", "svc")
ALIASES = {"services": "service", "svc": "service"}


class VerbGroup(TyperGroup):
    """A verb's nouns, with kubectl's aliases (``svc``, ``services``) resolved by name:
    registering each alias as a command of its own would make typer build it again on
    every run, which a one-shot command pays for in start-up time."""

    # (click's types are typer's private copy in some releases, so not named here.)
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))


def verb_app(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, cls=VerbGroup)


def register(app: typer.Typer, command: Callable[..., Any], **kwargs: Any) -> None:
    aliases = ", ".join(ALIASES)
    app.command("service", epilog=f"Aliases of service: {aliases}.", **kwargs)(command)


class Output(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of the service.", show_default=True)
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="Output format.", show_default=True)
]
