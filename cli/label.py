"""``skyctl label service NAME... k=v k2- [--overwrite]`` (or ``-l SELECTOR``, ``--all``):
change services' own labels.

Written as a ``ServiceUpdated`` on top of the revision just read, so a label change never
undoes someone else's concurrent change (that would be "changed since revision N").
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import DryRunOpt, NamespaceOpt, label_selector_option
from cli.parse import parse_name, parse_selector
from cli.targets import service_targets
from cli.verbs import register, verb_app
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.services.projection import ServiceRecord

__all__ = ["label_app", "relabel"]

label_app = verb_app("Update the labels on a resource.")


def relabel(labels: dict[str, str], changes: list[str], *, overwrite: bool) -> dict[str, str]:
    """The labels after ``changes`` (``k=v`` sets, ``k-`` removes), as kubectl applies them."""
    result = dict(labels)
    removals = [c[:-1] for c in changes if c.endswith("-") and "=" not in c]
    settings = parse_selector(
        [c for c in changes if not (c.endswith("-") and "=" not in c)], what="label"
    )
    for key, value in settings.items():
        if key in result and result[key] != value and not overwrite:
            raise InvalidInput(
                "label",
                f"{key}={value}",
                f"'{key}' already has a value ({result[key]}), and --overwrite is false",
            )
        result[key] = value
    for key in removals:
        parse_selector([f"{key}=x"], what="label")  # the key must be a valid label key
        result.pop(key, None)
    return result


def _is_change(arg: str) -> bool:
    """``k=v`` or ``k-``: a service name has neither ``=`` nor a trailing ``-``."""
    return "=" in arg or arg.endswith("-")


@connection_options
def label_service(
    arguments: Annotated[
        list[str],
        typer.Argument(
            metavar="[NAME|TYPE/NAME]... KEY=VALUE... KEY-...",
            help="Services (none with -l or --all), then labels to set, or to remove (k-).",
            show_default=False,
        ),
    ],
    namespace: NamespaceOpt = "default",
    selector: Annotated[str | None, label_selector_option("label the services")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Label every service in the namespace.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Allow changing the value of an existing label.")
    ] = False,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Set or remove services' labels: by name, selector (-l) or --all.

    Example:  skyctl label service web tier=front team-
    """
    namespace = parse_name(namespace, "namespace")
    changes = [a for a in arguments if _is_change(a)]
    names = [a for a in arguments if not _is_change(a)]
    if not changes:
        raise InvalidInput("label", " ".join(arguments), "give at least one KEY=VALUE or KEY-")
    targets = service_targets(names, selector, every)
    relabel({}, changes, overwrite=True)  # every change checked before anything is read

    async def run() -> list[tuple[str, str]]:
        done: list[tuple[str, str]] = []
        async with await conn.open(writes=True) as registry:
            if targets.every:
                records = await targets.records(registry, namespace)
                if not records:
                    print(f"No resources found in {namespace} namespace.", file=sys.stderr)
            else:
                records = [await registry.get(namespace, name) for name in targets.names]
            for record in records:
                done.append(await _label(registry, record, changes, overwrite, dry_run))
        return done

    for name, said in run_command(run()):
        print(f"service/{name} {said}")


async def _label(
    registry: Registry,
    record: ServiceRecord,
    changes: list[str],
    overwrite: bool,
    dry_run: bool,
) -> tuple[str, str]:
    """One service relabeled on top of the revision read; what to say of it."""
    service = record.service
    labels = relabel(service.labels, changes, overwrite=overwrite)
    verb = "labeled" if set(labels.items()) - set(service.labels.items()) else "unlabeled"
    changed = service.model_copy(update={"labels": dict(sorted(labels.items()))})
    done = await registry.apply(changed, expected_revision=record.seq, dry_run=dry_run)
    if done.action == "unchanged":
        return service.name, "not labeled"
    return service.name, f"{verb}{' (dry run)' if dry_run else ''}"


register(label_app, label_service)
