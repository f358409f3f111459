"""``skyctl init``: create the registry's streams and subscriptions bucket, or report them."""

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.terminal import safe

if TYPE_CHECKING:
    from registry.jetstream.provision import Provisioned

__all__ = ["init"]


@connection_options
def init(
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            "-r",
            min=1,
            max=5,
            help="Copies JetStream keeps of the log: 3 on a three-node cluster. Creates "
            "with it, and scales an existing stream to it. Without it: $SKYFLOW_REPLICAS, "
            "else 1, for what is created; what exists is left as it is.",
            show_default=False,
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Create the registry's streams and subscriptions bucket if missing; report them.

    The event stream, the durable-subscriptions bucket, and the liveness stream tasks
    announce themselves in. Any command creates what it needs on first use; init does it
    up front, with the replica count a cluster needs.

    Example:  skyctl init --replicas 3 -S nats://127.0.0.1:4222,nats://127.0.0.1:4223
    """
    from registry.jetstream.provision import provision

    async def run() -> list["Provisioned"]:
        async with await dataclasses.replace(conn, replicas=replicas).open_log() as log:
            return await provision(log, scale=replicas is not None)

    for line in asyncio.run(run()):
        print(safe(str(line)))  # node names come from the server
