"""``skyctl apply -f``, and the ``-f`` of ``create`` and ``delete``: services from manifests.

Every file is read and checked before anything is written, so a bad document writes
nothing from its files. One service goes through ``Registry.apply``/``create``/``delete``;
more go through the bulk path, pipelined. What happened to each is printed as kubectl
prints it (``service/web configured``), in the order of the files.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.manifest import Manifest, load_manifests
from cli.terminal import safe
from registry.errors import InvalidInput, NotFound, RegistryError, ServiceError

if TYPE_CHECKING:
    from registry.client import Registry

__all__ = [
    "DryRunOpt",
    "FilenameOpt",
    "NamespaceFlag",
    "apply",
    "create_from_files",
    "delete_from_files",
]

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
    bool, typer.Option("--dry-run", help="Print what would happen; write nothing.")
]
NamespaceFlag = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace for manifests that name none (default: default)."
    ),
]


def _report(failures: list[RegistryError]) -> None:
    """Every failure but the last as a line; the last leaves through ``main`` (exit code)."""
    for failure in failures[:-1]:
        print(f"error: {safe(str(failure))}", file=sys.stderr)
    raise failures[-1]


def _namespace(value: str | None) -> str | None:
    from cli.parse import parse_name

    return None if value is None else parse_name(value, "namespace")


@connection_options
def apply(
    filename: FilenameOpt = None,
    namespace: NamespaceFlag = None,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Create the services of the manifests that are missing, update those that differ.

    Writes nothing for a service that is already as described ("unchanged"). A
    metadata.resourceVersion in a manifest applies it only on top of that revision.

    Example:  skyctl get svc web -o yaml > web.yaml; (edit it); skyctl apply -f web.yaml
    """
    manifests = load_manifests(filename or [], namespace=_namespace(namespace))
    _run(conn, manifests, dry_run, lambda registry: _apply_all(registry, manifests, dry_run))


Outcome = str | RegistryError | None
"""What happened to one manifest: kubectl's verb, a failure, or None (nothing to say)."""


def _run(
    conn: Connection,
    manifests: Sequence[Manifest],
    dry_run: bool,
    act: Callable[[Registry], Awaitable[Sequence[Outcome]]],
) -> None:
    """Act on the manifests, print one line per service in file order, then fail if any did."""
    suffix = " (dry run)" if dry_run else ""

    async def run() -> Sequence[Outcome]:
        async with await conn.open() as registry:
            return await act(registry)

    failures: list[RegistryError] = []
    for manifest, outcome in zip(manifests, asyncio.run(run()), strict=True):
        if isinstance(outcome, RegistryError):
            failures.append(outcome)
        elif outcome is not None:
            print(f"service/{manifest.service.name} {outcome}{suffix}", flush=True)
    if failures:
        _report(failures)


async def _apply_all(
    registry: Registry, manifests: Sequence[Manifest], dry_run: bool
) -> list[Outcome]:
    if len(manifests) == 1 or dry_run:
        results: list[Outcome] = []
        for m in manifests:
            try:
                done = await registry.apply(
                    m.service, expected_revision=m.resource_version, dry_run=dry_run
                )
                results.append(done.action)
            except ServiceError as exc:
                results.append(exc)
        return results
    outcomes = await registry.apply_many([(m.service, m.resource_version) for m in manifests])
    return [o if isinstance(o, ServiceError) else o.action for o in outcomes]


def create_from_files(
    conn: Connection, filename: list[str], namespace: str | None, dry_run: bool
) -> None:
    """``skyctl create -f``: like ``apply``, but a service that exists is an error."""
    manifests = load_manifests(filename, namespace=_namespace(namespace))

    async def create_all(registry: Registry) -> list[Outcome]:
        if len(manifests) > 1 and not dry_run:
            created = await registry.create_many([m.service for m in manifests])
            return [o if isinstance(o, RegistryError) else "created" for o in created]
        results: list[Outcome] = []
        for m in manifests:
            try:
                await registry.create(m.service, dry_run=dry_run)
                results.append("created")
            except ServiceError as exc:
                results.append(exc)
        return results

    _run(conn, manifests, dry_run, create_all)


def delete_from_files(
    conn: Connection,
    filename: list[str],
    namespace: str | None,
    dry_run: bool,
    ignore_not_found: bool,
) -> None:
    """``skyctl delete -f``: delete each service a manifest names."""
    manifests = load_manifests(filename, namespace=_namespace(namespace))

    async def delete_all(registry: Registry) -> list[Outcome]:
        results: list[Outcome] = []
        for m in manifests:
            try:
                await registry.delete(m.service.namespace, m.service.name, dry_run=dry_run)
                results.append("deleted")
            except NotFound as exc:
                results.append(None if ignore_not_found else exc)
            except ServiceError as exc:
                results.append(exc)
        return results

    _run(conn, manifests, dry_run, delete_all)


def no_files_or_noun(what: str) -> InvalidInput:
    return InvalidInput(
        what, "", "say what to act on: a noun (service NAME) or -f FILE (see --help)"
    )
