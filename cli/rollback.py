"""``skyctl rollback service``: restore a service's definition from its history (as
``kubectl rollout undo``), written as a ``ServiceUpdated`` like any change."""

from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import NamespaceOpt
from cli.parse import parse_name
from cli.terminal import safe
from cli.verbs import register, verb_app
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.client import RolledBack

__all__ = ["rollback_app"]

rollback_app = verb_app("Restore a resource's definition from its history.")


@connection_options
def rollback_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    to_revision: Annotated[
        int | None,
        typer.Option(
            "--to-revision",
            metavar="N",
            help="The revision to restore: a SEQ of skyctl history service NAME (default: "
            "the last revision before the last change of the definition).",
            show_default=False,
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Restore the service's type, selector, ports, cluster, labels and external name as
    they were at a revision; its addresses and status stay. Written only on top of the
    revision the history was read at, so a change made meanwhile is never undone unseen.

    Example:  skyctl history service web; skyctl rollback service web --to-revision 12
    """
    namespace, name = parse_name(namespace, "namespace"), parse_name(name)
    if to_revision is not None and to_revision < 1:
        raise InvalidInput("--to-revision", to_revision, "a revision is a log sequence, 1 or more")

    async def roll_back() -> "RolledBack":
        async with await conn.open() as registry:
            return await registry.rollback(namespace, name, to_revision=to_revision)

    done = run_command(roll_back())
    if done.record is None:
        print(
            f"service/{name} skipped rollback (revision {done.revision} is the current "
            "definition already)"
        )
        return
    restored = safe("; ".join(done.changes)) or "addresses only"
    print(
        f"service/{name} rolled back to revision {done.revision} "
        f"(now revision {done.record.seq}): {restored}"
    )


register(rollback_app, rollback_service, short_help="Restore a service as it was at a revision.")
