"""``skyctl record``: keep the membership history, who served each service and when.

Run one beside the registry, or two (on two hosts): both write each transition once, and
while either runs nothing is lost. One that was down catches up from what the server
still holds and says, in the history, what it could not know.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_until_stopped
from cli.terminal import safe

__all__ = ["record"]


@connection_options
def record(
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="TEXT",
            help="This recorder's name in the history's notes (default recorder@HOST).",
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Record every task's joins, leaves and readiness changes into the membership history.

    Each transition once (never a heartbeat), in the stream SKYFLOW_MEMBERSHIP, kept for
    its retention (skyctl init --membership-retention). 'skyctl get endpoints NAME --at
    WHEN' and 'skyctl events --for task/NAME' read it.

    Example:  skyctl record
    """
    if name is not None and (not name.strip() or not name.isprintable() or len(name) > 120):
        from registry.errors import InvalidInput

        raise InvalidInput("--name", name, "must be one printable line of at most 120 characters")

    async def run() -> None:
        from events.membership import MEMBERSHIP_STREAM
        from registry.discovery.recorder import Recorder

        async with await conn.open(keep_reconnecting=True, writes=True) as registry:
            membership = await registry.log.membership(create=True)
            days = membership.retention_s / 86400
            kept = f"{days:g}d" if days >= 1 else f"{membership.retention_s}s"
            print(
                f"record: recording membership into {MEMBERSHIP_STREAM} (kept {kept})",
                flush=True,
            )
            recorder = Recorder(
                registry.log,
                name=name,
                on_note=lambda text: print(safe(text), flush=True),
                on_skipped=lambda skipped: print(
                    safe(f"warning: skipped {skipped}"), file=sys.stderr, flush=True
                ),
            )
            await recorder.run()

    run_until_stopped(run)
