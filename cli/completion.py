"""``skyctl completion bash|zsh|fish``: tab completion of commands, flags and live names.

The scripts are typer's (click's protocol: the shell runs ``skyctl`` again with
``_SKYCTL_COMPLETE`` set and the words typed so far). What is added here: the NAME of
``get``, ``delete``, ``history``, ``describe``, ``edit`` and ``label`` completes to the
services live on the server in the namespace given on the line (``-n``/``--namespace``,
else ``default``), and ``-n`` to the namespaces that have services. The server is asked
with a short timeout; unreachable, slow or refusing, it yields no suggestions and no
message, since anything printed would land in the user's prompt.

One hook (the completion classes' ``get_completions``) serves every verb, including those
added later, without each command declaring a completer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.hosted import COMPLETE_VAR

if TYPE_CHECKING:
    from registry.services.projection import ServiceRecord

__all__ = ["COMPLETE_VAR", "SERVICE_VERBS", "Shell", "completion", "prepare"]

PROG = "skyctl"
SERVICE_VERBS = frozenset({"get", "delete", "history", "describe", "edit", "label"})
NAME_PARAMETERS = frozenset({"name", "names", "arguments"})  # label: names, then changes
TIMEOUT = 2.0  # seconds a shell waits at most on a TAB for names from the server


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print a completion script for a shell.

    bash:  source <(skyctl completion bash)      (or save it in ~/.bash_completion.d/)
    zsh:   source <(skyctl completion zsh)       (after compinit)
    fish:  skyctl completion fish | source
    """
    classes = _classes()
    print(classes[shell](None, {}, PROG, COMPLETE_VAR).source().strip())


def prepare() -> None:
    """Make this process answer a completion request: our classes, under both spellings
    of the instruction (typer's ``complete_bash``, click's ``bash_complete``)."""
    instruction = os.environ.get(COMPLETE_VAR, "")
    first, _, second = instruction.partition("_")
    if first in Shell.__members__ and second in ("complete", "source"):
        os.environ[COMPLETE_VAR] = f"{second}_{first}"
    _classes()


def _classes() -> dict[Shell, Any]:
    """typer's completion classes for each shell, with live names added, registered with
    the click that typer uses (its own copy in typer 0.28, click itself before)."""
    from typer import _completion_classes as typer_classes

    base = sys.modules[typer_classes.BashComplete.__mro__[1].__module__]
    made: dict[Shell, Any] = {}
    for shell, parent in (
        (Shell.bash, typer_classes.BashComplete),
        (Shell.zsh, typer_classes.ZshComplete),
        (Shell.fish, typer_classes.FishComplete),
    ):
        namespace = {"get_completions": _completions_with_live_names(base)}
        if shell is Shell.bash:
            # typer's check runs bash to read its version; a script is text, and asking
            # for it should not start processes.
            namespace["source"] = base.ShellComplete.source
        cls = type(f"Skyctl{parent.__name__}", (parent,), namespace)
        base.add_completion_class(cls, shell.value)
        made[shell] = cls
    return made


def _completions_with_live_names(base: Any) -> Any:
    """click's ``ShellComplete.get_completions``, asking the server for the parameters
    whose values live there."""

    def get_completions(self: Any, args: list[str], incomplete: str) -> list[Any]:
        ctx = base._resolve_context(self.cli, self.ctx_args, self.prog_name, args)
        obj, incomplete = base._resolve_incomplete(ctx, args, incomplete)
        live = _live_completions(ctx, obj, incomplete)
        if live is not None:
            return [base.CompletionItem(value) for value in live]
        result: list[Any] = obj.shell_complete(ctx, incomplete)
        return result

    return get_completions


def _live_completions(ctx: Any, obj: Any, incomplete: str) -> list[str] | None:
    """Names or namespaces from the server for the parameter being completed; None when
    the parameter is not one of those."""
    from cli.verbs import NOUNS

    kind = getattr(obj, "param_type_name", None)
    name = getattr(obj, "name", None)
    parent = ctx.parent.info_name if ctx.parent is not None else None
    if kind == "option" and name == "namespace":
        namespaces = {record.service.namespace for record in _live(ctx, None)}
        return sorted(n for n in namespaces if n.startswith(incomplete))
    if kind != "argument" or name not in NAME_PARAMETERS:
        return None
    if parent not in SERVICE_VERBS or ctx.info_name not in NOUNS:
        return None
    given = ctx.params.get(name)
    taken = set(given) if isinstance(given, list | tuple) else set()
    namespace = ctx.params.get("namespace") or "default"
    names = [record.service.name for record in _live(ctx, namespace)]
    return [n for n in names if n.startswith(incomplete) and n not in taken]


def _live(ctx: Any, namespace: str | None) -> list[ServiceRecord]:
    from cli.connection import Connection

    fields = {f.name for f in dataclasses.fields(Connection)} - {"replicas"}
    given = {key: ctx.params[key] for key in fields if ctx.params.get(key) is not None}

    async def fetch() -> list[ServiceRecord]:
        async with asyncio.timeout(TIMEOUT), await Connection.resolve(**given).open() as registry:
            return await registry.list(namespace)

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # warnings would land in the prompt
            return asyncio.run(fetch())
    except Exception:  # unreachable, refused, too slow: no suggestions, as promised
        return []
