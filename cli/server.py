"""``skyctl server``: the bundled nats-server in the foreground, until Ctrl-C."""

import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["server"]


def server(
    store_dir: Annotated[
        Path | None,
        typer.Option(
            "--store-dir",
            "-d",
            help="Where JetStream keeps the log "
            "[default: $XDG_DATA_HOME/skyflow-registry or ~/.local/share/skyflow-registry]",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Client port on 127.0.0.1.")] = 4222,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A nats-server config to use instead of the bundled one.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the bundled NATS server with JetStream (the registry's default home).

    Example:  skyctl server --store-dir ./data
    """
    import signal
    import subprocess

    from registry.jetstream.server import NatsServer, ServerStartError, default_store_dir

    store = (store_dir or default_store_dir()).expanduser().resolve()
    try:
        nats_server = NatsServer(store, port=port, config=config)
        command = nats_server.command()
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(3) from None
    store.mkdir(parents=True, exist_ok=True)
    print(
        f"skyctl: serving nats://127.0.0.1:{port} with JetStream in {store} (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    process = subprocess.Popen(command, env=nats_server.environment())
    # Whoever stops skyctl stops the server: pass SIGTERM on, and Ctrl-C too (a terminal
    # signals both processes, a supervisor or `kill -INT` only this one).
    signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
    try:
        code = process.wait()
    except KeyboardInterrupt:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait()
    if code in (-signal.SIGINT, -signal.SIGTERM):
        code = 0
    if code != 0:
        print(f"error: nats-server exited with status {code} (its log is above)", file=sys.stderr)
        raise typer.Exit(3)
