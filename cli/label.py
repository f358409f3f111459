"""``skyctl label service NAME k=v k2- [--overwrite]``: change a service's own labels.

Written as a ``ServiceUpdated`` on top of the revision just read, so a label change never
undoes someone else's concurrent change (that would be "changed since revision N").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.options import DryRunOpt, NamespaceOpt
from cli.parse import parse_name, parse_selector
from cli.verbs import register, verb_app
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.services.decisions import Applied

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


@connection_options
def label_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    changes: Annotated[
        list[str],
        typer.Argument(metavar="KEY=VALUE... KEY-...", help="Labels to set, or to remove (k-)."),
    ],
    namespace: NamespaceOpt = "default",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Allow changing the value of an existing label.")
    ] = False,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Set or remove labels of a service.

    Example:  skyctl label service web tier=front team-
    """
    namespace, name = parse_name(namespace, "namespace"), parse_name(name)

    async def run() -> tuple[str, Applied]:
        async with await conn.open(writes=True) as registry:
            record = await registry.get(namespace, name)
            service = record.service
            labels = relabel(service.labels, changes, overwrite=overwrite)
            verb = "labeled" if set(labels.items()) - set(service.labels.items()) else "unlabeled"
            changed = service.model_copy(update={"labels": dict(sorted(labels.items()))})
            done = await registry.apply(changed, expected_revision=record.seq, dry_run=dry_run)
            return verb, done

    verb, done = asyncio.run(run())
    if done.action == "unchanged":
        print(f"service/{name} not labeled")
    else:
        print(f"service/{name} {verb}{' (dry run)' if dry_run else ''}")


register(label_app, label_service)
