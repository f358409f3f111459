"""``skyctl apply -f``: create the services of manifests that are missing, update those
that differ (the ``-f`` path itself is ``cli.files``, shared with ``create`` and
``delete``)."""

from __future__ import annotations

from cli.connection import Connection, connection_options
from cli.files import apply_all, collector_paused, manifest_namespace, plan_all, print_plans, run
from cli.manifest import load_manifests
from cli.options import DryRunOpt, FilenameOpt, NamespaceFlag

__all__ = ["apply"]


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
    With --dry-run, each change it would make is listed under its service, as skyctl
    diff lists it.

    Example:  skyctl get svc web -o yaml > web.yaml; (edit it); skyctl apply -f web.yaml
    """
    with collector_paused():
        manifests = load_manifests(filename or [], namespace=manifest_namespace(namespace))
        if dry_run:
            print_plans(manifests, plan_all(conn, manifests), " (dry run)")
            return
        run(conn, manifests, dry_run, lambda registry: apply_all(registry, manifests, dry_run))
