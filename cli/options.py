"""The options ``skyctl``'s verbs spell the same way: ``-n``, ``-o`` (with kubectl's
template formats where a verb prints through them), ``-A``, ``-l``, ``-f`` and
``--dry-run``. A verb imports its options from here, never from another verb."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer

__all__ = [
    "DRY_RUN_MODES",
    "TEMPLATE_FORMATS",
    "DryRunOpt",
    "FilenameOpt",
    "Format",
    "NamespaceFlag",
    "NamespaceOpt",
    "Output",
    "OutputOpt",
    "TaskNamespaceOpt",
    "all_namespaces_option",
    "dry_run_argv",
    "format_option",
    "label_selector_option",
    "namespace_option",
    "no_headers_option",
    "output_option",
    "sort_by_option",
    "watch_option",
]


class Output(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


_PLAIN = frozenset(o.value for o in Output)
# Formats that carry an argument: `-o jsonpath={.metadata.name}`, as kubectl.
TEMPLATE_FORMATS = ("jsonpath", "jsonpath-file", "custom-columns", "custom-columns-file")


@dataclass(frozen=True, slots=True)
class Format:
    """A ``-o`` value of a command that also prints through templates: a plain format
    (``output`` set) or a template format with its argument."""

    name: str
    argument: str = ""

    @property
    def output(self) -> Output | None:
        return Output(self.name) if self.name in _PLAIN else None

    def __str__(self) -> str:
        return f"{self.name}={self.argument}" if self.name in TEMPLATE_FORMATS else self.name


def _choices(plain: Sequence[Output], templates: Sequence[str]) -> list[str]:
    return [o.value for o in plain] + [f"{t}=..." for t in templates]


def _parse_format(value: str, plain: Sequence[Output], templates: Sequence[str]) -> tuple[str, str]:
    # `-o=json` reaches us as "=json" (click reads a short option's `=` as part of the
    # value, where kubectl's flags do not).
    text = value[1:] if value.startswith("=") else value
    name, eq, argument = text.partition("=")
    if name in templates:
        if not eq or not argument:
            raise typer.BadParameter(f"{name} needs an argument: -o {name}=...")
        return name, argument
    if not eq and name in [o.value for o in plain]:
        return name, ""
    offered = ", ".join(repr(c) for c in _choices(plain, templates))
    raise typer.BadParameter(f"{value!r} is not one of {offered}.")


def _completer(choices: list[str]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [c.removesuffix("...") for c in choices if c.startswith(incomplete)]

    return complete


def output_option(*plain: Output, help: str | None = None) -> Any:
    """``-o/--output`` offering exactly ``plain``: what this command really prints."""
    choices = _choices(plain, ())

    def parse(value: str | Output) -> Output:
        if isinstance(value, Output):
            return value
        return Output(_parse_format(value, plain, ())[0])

    return typer.Option(
        "--output",
        "-o",
        parser=parse,
        metavar="|".join(choices),
        help=help or f"Output format: {', '.join(choices)}.",
        autocompletion=_completer(choices),
        show_default=True,
    )


def format_option(*plain: Output, help: str | None = None) -> Any:
    """``-o/--output`` with kubectl's template formats besides ``plain``."""
    choices = _choices(plain, TEMPLATE_FORMATS)

    def parse(value: str | Format) -> Format:
        if isinstance(value, Format):
            return value
        return Format(*_parse_format(value, plain, TEMPLATE_FORMATS))

    return typer.Option(
        "--output",
        "-o",
        parser=parse,
        metavar="FORMAT",
        help=help or f"Output format: {', '.join(choices)}.",
        autocompletion=_completer(choices),
        show_default=True,
    )


def all_namespaces_option(help: str) -> Any:
    return typer.Option("--all-namespaces", "-A", help=help)


def label_selector_option(what: str) -> Any:
    """``-l/--selector``: kubectl's label selector grammar (``cli/selector.py``)."""
    return typer.Option(
        "--selector",
        "-l",
        metavar="SELECTOR",
        help=f"Only {what} whose labels match: k=v, k==v, k!=v, k, !k, k in (a,b), "
        "k notin (a,b); commas join them (and).",
    )


def no_headers_option() -> Any:
    return typer.Option("--no-headers", help="Print tables without their header line.")


def sort_by_option(example: str) -> Any:
    """``--sort-by JSONPATH``: a path into the object ``-o json`` shows (``cli.template``)."""
    return typer.Option(
        "--sort-by",
        metavar="JSONPATH",
        help="Sort the list by a path into the object -o json shows, e.g. "
        f"{{.metadata.name}} or {example}.",
    )


def watch_option() -> Any:
    return typer.Option("--watch", "-w", help="After listing, print every change as it happens.")


def _context_namespace(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """A namespace not given on the command line is the context's, if it has one
    (kubeconfig's habit): ``-n`` > the context's namespace > default. The context is the
    one the command uses (``--context`` is eager, so it is read before this runs)."""
    if ctx.resilient_parsing:  # completing a command line: no files read, no errors
        return value
    source = ctx.get_parameter_source(param.name or "")
    if source is None or source.name != "DEFAULT":
        return value
    from cli.contexts import chosen
    from registry.errors import InvalidInput

    flag = ctx.params.get("context")
    try:
        context = chosen(flag)
    except InvalidInput:
        if flag is not None:
            raise
        # A context nobody named here (the selected one, or a verb group's own -n read
        # before its command's --context): the connection reports it if it is used.
        return value
    if context is None or context.namespace is None:
        return value
    return context.namespace


_FROM_CONTEXT = " Default: the context's namespace (skyctl config set-context), else default."


def namespace_option(help: str, *, show_default: bool = True) -> Any:
    """``-n/--namespace``, whose default comes from the context in use."""
    return typer.Option(
        "--namespace",
        "-n",
        help=help + _FROM_CONTEXT,
        show_default=show_default,
        callback=_context_namespace,
    )


NamespaceOpt = Annotated[str, namespace_option("Namespace of the service.")]
TaskNamespaceOpt = Annotated[str, namespace_option("Namespace of the task.")]
OutputOpt = Annotated[Output, output_option(*Output)]
FilenameOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filename",
        "-f",
        metavar="FILE",
        help="Manifest file, directory of .yaml/.yml/.json files, or - for stdin; repeatable.",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print what would happen; write nothing. kubectl's --dry-run=client and "
        "=server mean the same; --dry-run=none does it.",
    ),
]
DRY_RUN_MODES = {"client": True, "server": True, "none": False}


def dry_run_argv(argv: list[str]) -> list[str]:
    """kubectl's ``--dry-run=client|server|none`` as the flag it means here (client and
    server: ``--dry-run``, print and write nothing; none: no dry run); another value is
    ``InvalidInput`` naming it. Arguments after ``--`` are left as they are."""
    from registry.errors import InvalidInput

    result: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return result + argv[index:]
        if not arg.startswith("--dry-run="):
            result.append(arg)
            continue
        mode = arg.partition("=")[2]
        if mode not in DRY_RUN_MODES:
            raise InvalidInput("--dry-run", mode, "give client, server or none")
        if DRY_RUN_MODES[mode]:
            result.append("--dry-run")
    return result


NamespaceFlag = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace for manifests that name none (default: the context's namespace, "
        "else default).",
        callback=_context_namespace,
    ),
]
