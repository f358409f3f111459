"""Serving the web UI (``cli/webapp.py``) with uvicorn: where it listens and how it
stops, for ``skyctl ui`` and for ``skyctl agent --ui``, which serves it in the agent's
process. Nothing here imports the web stack until it serves."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli.connection import Connection
from cli.dataplane import parse_listen

if TYPE_CHECKING:
    from cli.webapp import DnsView
    from registry.services.proof import Trust

__all__ = ["UiPlan", "bind"]


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


# Seconds a stopping UI waits for open responses: a live page's event stream never ends.
_GRACE_S = 2


@dataclass(frozen=True)
class UiPlan:
    """Where the UI listens and how it reads: its flags, checked (``skyctl ui``, and
    ``skyctl agent --ui``, which serves it in the agent's process)."""

    host: str
    port: int
    anonymous: bool

    @classmethod
    def from_flags(cls, listen: str, *, allow_remote: bool, anonymous: bool) -> UiPlan:
        host, port = parse_listen(listen, allow_remote=allow_remote)
        return cls(host, port, anonymous)

    def bind(self, listen: str) -> socket.socket:
        """Take the address (port 0: any free one) and say where the UI is; a taken one
        is one line naming it."""
        try:
            sock = bind(self.host, self.port)
        except OSError as exc:
            from registry.errors import InvalidInput

            raise InvalidInput("listen", listen, f"cannot listen there: {exc.strerror}") from None
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"Serving the SkyFlow UI on http://{shown}:{bound_port}/", flush=True)
        return sock

    async def serve(
        self, sock: socket.socket, conn: Connection, dns: DnsView, trust: Trust | None = None
    ) -> None:
        """Serve the UI on ``sock`` (``trust``: the keys that prove an actor) until
        cancelled; then stop as uvicorn stops (sessions closed, open streams given
        ``_GRACE_S`` to end). Signals are left to the caller."""
        import uvicorn

        from cli.webapp import make_app

        class Embedded(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the command's own handler stops it (cli.lifetime)

        app = make_app(conn, anonymous=self.anonymous, dns=dns, trust=trust)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=_GRACE_S
        )
        server = Embedded(config)
        running = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            # A stop is bounded whatever it waits on (a person's connection closing, a
            # follower's clean-up): Ctrl-C ends the UI within a few seconds.
            with contextlib.suppress(TimeoutError):  # ends the open event streams first
                async with asyncio.timeout(_GRACE_S):  # (not wait_for: see pyproject)
                    await app.state.sessions.close()
            server.should_exit = True
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(2 * _GRACE_S):
                    await asyncio.shield(running)
            raise
