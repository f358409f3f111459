"""``skyctl ui``: the registry in a browser, live, read as whoever signs in.

The app is ``cli/webapp.py`` (sessions, the live feed) over ``cli/webpages.py`` (the
pages, escaped); this verb binds the socket and runs it with uvicorn until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.dataplane import parse_listen
from cli.proof import TrustOpt, load_trust

__all__ = ["DEFAULT_UI_LISTEN", "ui_command"]

DEFAULT_UI_LISTEN = "127.0.0.1:8080"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@connection_options
def ui_command(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to serve the UI over HTTP (port 0: any free port).",
        ),
    ] = DEFAULT_UI_LISTEN,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --listen address other machines can reach (not loopback): "
            "sign-in passwords then cross the network in plain HTTP unless a TLS proxy "
            "is in front.",
        ),
    ] = False,
    anonymous: Annotated[
        bool,
        typer.Option(
            "--anonymous",
            help="No sign-in: every visitor reads as this command's own connection (for a "
            "local registry without users).",
        ),
    ] = False,
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Serve a live web UI of the registry, read-only, until Ctrl-C.

    Visitors sign in with the credentials skyctl takes (a user and password, or a token)
    and read with that person's permissions on the server; pages update live.

    Example:  skyctl ui --listen 127.0.0.1:8080
    """
    host, port = parse_listen(listen, allow_remote=allow_remote)
    trust = load_trust(trust_file)
    import uvicorn

    from cli.webapp import make_app

    try:
        sock = bind(host, port)
    except OSError as exc:
        from registry.errors import InvalidInput

        raise InvalidInput("listen", listen, f"cannot listen there: {exc.strerror}") from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"Serving the SkyFlow UI on http://{shown}:{bound_port}/", flush=True)
    config = uvicorn.Config(
        make_app(conn, anonymous=anonymous, trust=trust), log_level="warning", lifespan="on"
    )
    gc.enable()  # not one-shot (see cli.launch)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
