"""``skyctl ui``: the registry in a browser, live, read as whoever signs in.

The app is ``cli/webapp.py`` (sessions, the live feed) over ``cli/webpages.py`` (the
pages, escaped); this verb binds the socket and runs it (``cli/webserve.py``) until
Ctrl-C.
"""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from cli.connection import Connection, connection_options
from cli.dataplane import DEFAULT_DOMAIN, parse_domain_flag
from cli.proof import TrustOpt, load_trust
from cli.webserve import UiPlan, bind

__all__ = ["DEFAULT_UI_LISTEN", "bind", "ui_command"]

DEFAULT_UI_LISTEN = "127.0.0.1:8080"


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
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            metavar="DOMAIN",
            help="The domain of the skyctl dns whose answers a service's page shows.",
        ),
    ] = DEFAULT_DOMAIN,
    trust_file: TrustOpt = None,
    *,
    conn: Connection,
) -> None:
    """Serve a live web UI of the registry, read-only, until Ctrl-C.

    Visitors sign in with the credentials skyctl takes (a user and password, a token, or
    a creds file's contents) and read with that person's permissions on the server;
    pages update live.

    Example:  skyctl ui --listen 127.0.0.1:8080
    """
    from cli.lifetime import run_until_stopped
    from cli.webapp import DnsView

    plan = UiPlan.from_flags(listen, allow_remote=allow_remote, anonymous=anonymous)
    dns = DnsView(domain=parse_domain_flag(domain).to_text())
    trust = load_trust(trust_file)
    sock = plan.bind(listen)
    gc.enable()  # not one-shot (see cli.launch)
    run_until_stopped(lambda: plan.serve(sock, conn, dns, trust))
