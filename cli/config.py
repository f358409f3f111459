"""``skyctl config``: the nats CLI's contexts with kubectl's verbs (get-contexts,
current-context, use-context, set-context), and a default namespace per context.

The files are the nats CLI's own (``cli/contexts.py``), so ``nats context select`` and
``skyctl config use-context`` are one choice, and a context made here works for ``nats``.
Nothing here prints a password or a token.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.errors import EXIT_REFUSED, fail
from cli.options import Output, output_option
from cli.terminal import warn_once

__all__ = ["config_app"]

config_app = typer.Typer(
    help="Contexts: which server, as whom, in which namespace (the nats CLI's contexts, "
    "with kubectl's verbs).",
    no_args_is_help=True,
)


@config_app.command("get-contexts")
def get_contexts(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Only these contexts.", show_default=False),
    ] = None,
    output: Annotated[Output, output_option(Output.table, Output.name)] = Output.table,
) -> None:
    """List the contexts; * marks the one commands use.

    Passwords and tokens are never shown.  Example:  skyctl config get-contexts
    """
    from cli import contexts
    from cli.render import Table
    from registry.errors import InvalidInput
    from registry.jetstream.connection import mask_url

    known = contexts.known()
    for name in names or []:
        if name not in known:
            raise InvalidInput("context", name, f"no such context in {contexts.context_dir()}")
    shown = names or known
    if output is Output.name:
        for name in shown:
            print(name)
        return
    if not shown:
        print(f"No contexts found in {contexts.context_dir()}.", flush=True)
        return
    current = contexts.chosen_name()
    rows = []
    for name in shown:
        mark = "*" if name == current else ""
        try:
            context = contexts.load(name)
            server = mask_url(context.server or "nats://127.0.0.1:4222")
            rows.append([mark, name, server, context.identity, context.namespace or ""])
        except InvalidInput as exc:
            warn_once(str(exc))
            rows.append([mark, name, "(unreadable)", "", ""])
    print(Table(["CURRENT", "NAME", "SERVER", "USER", "NAMESPACE"], rows).render(rows))


@config_app.command("current-context")
def current_context() -> None:
    """Print the name of the context commands use.

    $SKYFLOW_CONTEXT, else $NATS_CONTEXT, else the selected one; exit 1 if none.

    Example:  skyctl config current-context
    """
    from cli import contexts

    name = contexts.chosen_name()
    if name is None:
        fail(
            "no context is selected (skyctl config use-context NAME, or nats context select)",
            EXIT_REFUSED,
        )
    print(name)


@config_app.command("use-context", short_help="Select the context commands use.")
def use_context(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The context.", show_default=False)],
) -> None:
    """Select the context every command uses unless told otherwise.

    The same choice as nats context select: ~/.config/nats/context.txt.

    Example:  skyctl config use-context shop
    """
    from cli import contexts

    contexts.select(name)
    print(f'Switched to context "{name}".')


def _setting(flag: str, help: str, metavar: str = "TEXT") -> object:
    return typer.Option(flag, help=help + " An empty value removes it.", metavar=metavar)


@config_app.command("set-context")
def set_context(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="The context (with --current: none).", show_default=False
        ),
    ] = None,
    current: Annotated[
        bool, typer.Option("--current", help="Change the context commands use now.")
    ] = False,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NS",
            help="Default namespace of commands in this context (kept by skyctl, beside the "
            "nats CLI's file). An empty value removes it.",
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="PATH",
            help="The node agent's socket for this context (kept by skyctl). An empty value "
            "removes it.",
        ),
    ] = None,
    server: Annotated[str | None, _setting("--server", "Server URL (url).", "URL")] = None,
    user: Annotated[str | None, _setting("--user", "User name (user).")] = None,
    password: Annotated[str | None, _setting("--password", "Password (password).")] = None,
    token: Annotated[str | None, _setting("--token", "Auth token (token).")] = None,
    creds: Annotated[str | None, _setting("--creds", "Credentials file (creds).", "FILE")] = None,
    nkey: Annotated[str | None, _setting("--nkey", "NKey seed file (nkey).", "FILE")] = None,
    tlsca: Annotated[str | None, _setting("--tlsca", "CA certificate (ca).", "FILE")] = None,
    tlscert: Annotated[
        str | None, _setting("--tlscert", "Client certificate (cert).", "FILE")
    ] = None,
    tlskey: Annotated[str | None, _setting("--tlskey", "Client key (key).", "FILE")] = None,
    inbox_prefix: Annotated[
        str | None, _setting("--inbox-prefix", "Reply subject prefix (inbox_prefix).", "PREFIX")
    ] = None,
    description: Annotated[
        str | None, _setting("--description", "What the context is for (description).")
    ] = None,
) -> None:
    """Create a context, or change the settings given of one.

    Other settings, and keys skyctl does not know, are kept: the file stays the nats CLI's.

    Example:  skyctl config set-context shop -n shop --user shop-writer

    Example:  skyctl config set-context --current --namespace shop-staging
    """
    from cli import contexts
    from registry.errors import InvalidInput

    if current:
        if name is not None:
            raise InvalidInput("context", name, "give a NAME or --current, not both")
        name = contexts.chosen_name()
        if name is None:
            fail("--current: no context is selected (skyctl config use-context NAME)", 2)
    elif name is None:
        raise InvalidInput("context", "", "give a NAME, or --current")
    if namespace:
        from events.names import check_name
        from events.service import check_new_namespace

        try:
            check_new_namespace(check_name(namespace))
        except ValueError as exc:
            raise InvalidInput("namespace", namespace, str(exc)) from None
    updates = {
        "url": server,
        "user": user,
        "password": password,
        "token": token,
        "creds": creds,
        "nkey": nkey,
        "ca": tlsca,
        "cert": tlscert,
        "key": tlskey,
        "inbox_prefix": inbox_prefix,
        "description": description,
    }
    if agent and ("\0" in agent or not agent.strip()):
        raise InvalidInput("agent", agent, "must be a file path")
    _, created = contexts.save(name, updates, namespace, agent)
    print(f'Context "{name}" {"created" if created else "modified"}.')
