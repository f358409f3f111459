"""``skyctl version`` and ``skyctl --version``: what a bug report needs, with no server.

Like ``kubectl version --client``: this client's version, and the versions it runs on
(Python, nats-py). Read from the installed packages' metadata, so nothing heavy is
imported (``import nats`` alone costs about 100 ms).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.options import Output, output_option
from cli.render import to_json, to_yaml

__all__ = ["PACKAGE", "print_version", "version", "version_callback", "versions"]

PACKAGE = "skyflow-registry"


def _installed(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(distribution)
    except PackageNotFoundError:
        return "unknown (not installed)"


def versions() -> dict[str, str]:
    import platform

    return {
        "skyctl": _installed(PACKAGE),
        "python": platform.python_version(),
        "nats-py": _installed("nats-py"),
    }


def print_version(output: Output = Output.table) -> None:
    found = versions()
    if output is Output.json:
        print(to_json({"clientVersion": found}))
    elif output is Output.yaml:
        print(to_yaml({"clientVersion": found}))
    else:
        print(f"skyctl {found['skyctl']}")
        print(f"Python {found['python']}")
        print(f"nats-py {found['nats-py']}")


def version(
    output: Annotated[
        Output,
        output_option(Output.table, Output.json, Output.yaml),
    ] = Output.table,
) -> None:
    """Print the client's version and the Python and nats-py it runs on (no server needed).

    Example:  skyctl version -o json
    """
    print_version(output)


def version_callback(ctx: typer.Context, value: bool) -> None:
    """``--version`` on the root command: print and stop before any command runs (but not
    while the shell is only asking for completions of a line that holds it)."""
    if value and not ctx.resilient_parsing:
        print_version()
        raise typer.Exit()
