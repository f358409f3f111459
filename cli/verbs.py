"""The verb groups of ``skyctl``, with kubectl's aliases for their nouns (``svc``,
``services``, ``ep``); the options the verbs share are in ``cli.options``."""

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = [
    "ALIASES",
    "NOUNS",
    "LazyCommands",
    "VerbGroup",
    "noun_name",
    "register",
    "summarize",
    "summary",
    "verb_app",
]

NOUNS = ("service", "services", "svc")
ALIASES = {
    "services": "service",
    "svc": "service",
    # Discovery's nouns, each taken only where its verb has it.
    "endpoint": "endpoints",
    "ep": "endpoints",
    "task": "tasks",
    "tasks": "task",
    "namespace": "namespaces",
    "ns": "namespaces",
    "site": "sites",
}


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, each built (and its module imported) when first looked
    up: a one-shot command builds only what it runs. Listing names (usage errors'
    suggestions, completion) builds nothing; a help that lists every command, or a walk
    over ``items()``, builds them all."""

    def __init__(self, given: Mapping[str, Any], loaders: Mapping[str, Callable[[], Any]]) -> None:
        self._loaded: dict[str, Any] = dict(given)
        self._loaders = dict(loaders)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self._loaders[name]()  # (KeyError: no such command)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._loaders

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._loaders.pop(name, None)
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._loaders, *self._loaded]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._loaders, *self._loaded]))


def noun_name(info: Any) -> str:
    """The name typer gives a registered command (``typer.models.CommandInfo``)."""
    return str(info.name or info.callback.__name__.lower().replace("_", "-"))


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

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """kubectl's ``TYPE/NAME`` (``svc/web``, ``service/web``): the noun and the name,
        so ``skyctl get -o name | xargs skyctl delete`` works; a TYPE this verb does not
        act on is one line naming it."""
        if args and "/" in args[0] and not args[0].startswith("-"):
            kind, _, name = args[0].partition("/")
            if self.get_command(ctx, kind) is None:
                from registry.errors import InvalidInput

                raise InvalidInput(
                    "resource type", kind, f"{ctx.command_path} acts on {self.nouns()}"
                )
            args = [kind, name, *args[1:]]
        return super().resolve_command(ctx, args)

    def nouns(self) -> str:
        """This verb's nouns and their aliases, for messages: "service (services, svc)"."""
        names = []
        for noun in self.commands:
            aliases = [a for a, n in ALIASES.items() if n == noun and a != noun]
            names.append(f"{noun} ({', '.join(aliases)})" if aliases else noun)
        return " or ".join(names)


def verb_app(help: str, *, files: bool = False) -> typer.Typer:
    """A verb's group; with ``files``, the verb also acts on ``-f`` manifests itself."""
    return typer.Typer(help=help, no_args_is_help=True, cls=VerbGroup, invoke_without_command=files)


def register(
    app: typer.Typer, command: Callable[..., Any], noun: str = "service", **kwargs: Any
) -> None:
    aliases = ", ".join(alias for alias, name in ALIASES.items() if name == noun)
    epilog = f"Aliases of {noun}: {aliases}." if aliases else None
    app.command(noun, epilog=epilog, **kwargs)(command)


def summary(doc: str | None) -> str | None:
    """A command's line in its group's list: the first sentence of its help, on one line
    (a help's first paragraph keeps its line breaks, which a list cannot show)."""
    if not doc:
        return None
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + "." if dot else paragraph


def summarize(app: typer.Typer) -> None:
    """Give every command of ``app`` (and of its groups) its one-line summary where it has
    none of its own: what ``skyctl --help`` and each group's help list."""
    for command in app.registered_commands:
        if command.short_help is None and command.callback is not None:
            command.short_help = summary(command.help or command.callback.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            summarize(group.typer_instance)
