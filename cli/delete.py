"""``skyctl delete service``: delete services by name, say which, and why not."""

import sys
from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.files import delete_from_files, no_files_or_noun
from cli.lifetime import run_command
from cli.options import (
    DryRunOpt,
    FilenameOpt,
    NamespaceFlag,
    NamespaceOpt,
    label_selector_option,
)
from cli.parse import parse_name
from cli.targets import service_targets
from cli.terminal import safe
from cli.verbs import register, verb_app
from registry.errors import NotFound, RegistryError, UnreadableHistory

__all__ = ["delete_app"]

delete_app = verb_app("Delete resources.", files=True)


@delete_app.callback()
@connection_options
def delete_files(
    ctx: typer.Context,
    filename: FilenameOpt = None,
    namespace: NamespaceFlag = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Succeed if a service does not exist.")
    ] = False,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Delete resources: services by name, or the services manifests name (-f).

    Example:  skyctl delete -f services.yaml
    """
    if ctx.invoked_subcommand is not None:
        return
    if not filename:
        raise no_files_or_noun("delete")
    delete_from_files(conn, filename, namespace, dry_run, ignore_not_found)


@connection_options
def delete_service(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME|TYPE/NAME]...",
            help="Services to delete (web, or svc/web as get -o name prints it).",
            show_default=False,
        ),
    ] = None,
    namespace: NamespaceOpt = "default",
    selector: Annotated[str | None, label_selector_option("delete the services")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Delete every service in the namespace.")
    ] = False,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Succeed if a service does not exist.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Delete a service whose last event this version cannot read (otherwise "
            "refused, so no one writes over what they cannot read); the event names what "
            "it overrode.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Delete services by name, label selector (-l) or --all.

    Deletion cannot be undone (the log keeps its history).

    Example:  skyctl delete service myService;  skyctl get svc -o name | xargs skyctl delete
    """
    namespace = parse_name(namespace, "namespace")
    targets = service_targets(names or [], selector, every)

    async def delete() -> list[RegistryError]:
        failures: list[RegistryError] = []
        async with await conn.open(writes=True) as registry:
            chosen = list(targets.names)
            if targets.every:
                chosen = [r.service.name for r in await targets.records(registry, namespace)]
                if not chosen:
                    print(f"No resources found in {namespace} namespace.", file=sys.stderr)
            for name in chosen:
                try:
                    record = await registry.delete(namespace, name, dry_run=dry_run)
                except NotFound as exc:
                    if not ignore_not_found:
                        failures.append(exc)
                    continue
                except UnreadableHistory as exc:
                    if not force:
                        failures.append(exc)
                        continue
                    if dry_run:
                        seq = exc.seq
                        print(
                            f"service/{name} deleted (forced over unreadable seq {seq}) (dry run)"
                        )
                        continue
                    _, event = await registry.force_delete(namespace, name)
                    seq = event.overrides.seq
                    print(f"service/{name} deleted (forced over unreadable seq {seq})", flush=True)
                    continue
                done = " (dry run)" if dry_run else ""
                print(f"service/{record.service.name} deleted{done}", flush=True)
        return failures

    failures = run_command(delete())
    if failures:
        for failure in failures[:-1]:
            print(f"error: {safe(str(failure))}", file=sys.stderr)
        raise failures[-1]


register(delete_app, delete_service)
