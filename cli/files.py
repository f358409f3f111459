"""Acting on the services of manifest files: the ``-f`` of ``apply``, ``create`` and
``delete``.

Every file is read and checked before anything is written, so a bad document writes
nothing from its files. One service goes through ``Registry.apply``/``create``/``delete``;
more go through the bulk path, pipelined. What happened to each is printed as kubectl
prints it (``service/web configured``), in the order of the files.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from cli.connection import Connection
from cli.lifetime import run_command
from cli.manifest import Manifest, load_manifests
from cli.terminal import safe
from registry.errors import InvalidInput, NotFound, RegistryError, ServiceError

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.services.decisions import Applied

__all__ = [
    "Outcome",
    "apply_all",
    "collector_paused",
    "create_from_files",
    "delete_from_files",
    "manifest_namespace",
    "no_files_or_noun",
    "plan_all",
    "print_plans",
    "run",
]


def _report(failures: list[RegistryError]) -> None:
    """Every failure but the last as a line; the last leaves through ``main`` (exit code)."""
    for failure in failures[:-1]:
        print(f"error: {safe(str(failure))}", file=sys.stderr)
    raise failures[-1]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a bounded batch (``apply -f``): the manifests,
    services and writes of a file live until the command ends, so the collector's passes
    over them free next to nothing and cost about a tenth of an ``apply -f`` of 1,000
    services (35-45 ms); reference counting frees everything else as before, and what
    cycles the batch leaves are bounded by its input. (Never a hosted command: the
    setting is the process's.)"""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def manifest_namespace(value: str | None) -> str | None:
    from cli.parse import parse_name

    return None if value is None else parse_name(value, "namespace")


Outcome = str | RegistryError | None
"""What happened to one manifest: kubectl's verb, a failure, or None (nothing to say)."""


def run(
    conn: Connection,
    manifests: Sequence[Manifest],
    dry_run: bool,
    act: Callable[[Registry], Awaitable[Sequence[Outcome]]],
) -> None:
    """Act on the manifests, print one line per service in file order, then fail if any did."""
    suffix = " (dry run)" if dry_run else ""

    async def run() -> Sequence[Outcome]:
        async with await conn.open(writes=True) as registry:
            return await act(registry)

    failures: list[RegistryError] = []
    for manifest, outcome in zip(manifests, run_command(run()), strict=True):
        if isinstance(outcome, RegistryError):
            failures.append(outcome)
        elif outcome is not None:
            print(f"service/{manifest.service.name} {outcome}{suffix}", flush=True)
    if failures:
        _report(failures)


async def apply_all(
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


def plan_all(conn: Connection, manifests: Sequence[Manifest]) -> list[Applied | ServiceError]:
    """What ``apply`` would do to each manifest's service (``apply --dry-run``, ``diff``),
    or why it cannot: decided on what is live now, addresses it would take included,
    writing nothing."""

    async def plan() -> list[Applied | ServiceError]:
        plans: list[Applied | ServiceError] = []
        async with await conn.open() as registry:
            for m in manifests:
                try:
                    plans.append(
                        await registry.apply(
                            m.service, expected_revision=m.resource_version, dry_run=True
                        )
                    )
                except ServiceError as exc:
                    plans.append(exc)
        return plans

    return run_command(plan())


def print_plans(
    manifests: Sequence[Manifest], plans: Sequence[Applied | ServiceError], suffix: str
) -> bool:
    """Each service apply would change, as kubectl names it, with what would change under
    it in the words of ``history``'s CHANGES (``registry.services.diff``); nothing for one
    that is unchanged unless ``suffix`` (apply's own report). Then fail if any plan
    failed; whether anything would change."""
    from registry.services.diff import changes

    failures: list[RegistryError] = []
    differs = False
    for manifest, plan in zip(manifests, plans, strict=True):
        if isinstance(plan, RegistryError):
            failures.append(plan)
            continue
        if plan.action == "unchanged":
            if suffix:
                print(f"service/{manifest.service.name} unchanged{suffix}", flush=True)
            continue
        differs = True
        print(f"service/{manifest.service.name} {plan.action}{suffix}")
        before = plan.before.service if plan.before is not None else None
        after = plan.record.service if plan.record is not None else None
        for change in changes(before, after):
            print(f"  {safe(str(change))}")
    if failures:
        _report(failures)
    return differs


def create_from_files(
    conn: Connection, filename: list[str], namespace: str | None, dry_run: bool
) -> None:
    """``skyctl create -f``: like ``apply``, but a service that exists is an error."""
    manifests = load_manifests(filename, namespace=manifest_namespace(namespace))

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

    run(conn, manifests, dry_run, create_all)


def delete_from_files(
    conn: Connection,
    filename: list[str],
    namespace: str | None,
    dry_run: bool,
    ignore_not_found: bool,
) -> None:
    """``skyctl delete -f``: delete each service a manifest names."""
    manifests = load_manifests(filename, namespace=manifest_namespace(namespace))

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

    run(conn, manifests, dry_run, delete_all)


def no_files_or_noun(what: str) -> InvalidInput:
    return InvalidInput(
        what, "", "say what to act on: a noun (service NAME) or -f FILE (see --help)"
    )
