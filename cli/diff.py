"""``skyctl diff -f``: what ``apply -f`` would change, service by service, in the words of
``history``'s CHANGES column; kubectl diff's exit codes."""

from cli.connection import Connection, connection_options
from cli.errors import EXIT_INVALID, exit_code, fail
from cli.files import manifest_namespace, plan_all, print_plans
from cli.manifest import load_manifests
from cli.options import FilenameOpt, NamespaceFlag
from registry.errors import RegistryError

__all__ = ["EXIT_DIFFERS", "diff"]

# kubectl diff: 0 nothing would change, 1 something would, more than 1 an error.
EXIT_DIFFERS = 1


@connection_options
def diff(
    filename: FilenameOpt = None,
    namespace: NamespaceFlag = None,
    *,
    conn: Connection,
) -> None:
    """Show what apply -f would change: each service it would create or configure, with
    each field that would change (as skyctl history shows a change). Writes nothing.

    Exit 0 when nothing would change, 1 when something would, 2 or more on an error (as
    kubectl diff).  Example:  skyctl diff -f web.yaml && echo "web.yaml is applied"
    """
    try:
        manifests = load_manifests(filename or [], namespace=manifest_namespace(namespace))
        differs = print_plans(manifests, plan_all(conn, manifests), "")
    except RegistryError as exc:
        # An error is never "there are differences": its code is above 1 whatever it is.
        fail(str(exc), max(exit_code(exc), EXIT_INVALID))
    if differs:
        raise SystemExit(EXIT_DIFFERS)
