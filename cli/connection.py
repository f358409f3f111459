"""The connection flags every server-facing command takes, declared once.

``@connection_options`` adds ``--server`` and the credential flags (named as in the
nats CLI, with the same environment variables) to a typer command and hands them to
it as one ``conn: Connection``; a command never repeats them.
"""

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cli.terminal import warn_once

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.jetstream.credentials import Credentials
    from registry.jetstream.log import JetStreamLog

__all__ = ["DEFAULT_URL", "REPLICAS_ENV", "Connection", "connection_options"]

DEFAULT_URL = "nats://127.0.0.1:4222"  # the same as registry.jetstream's, without importing nats
REPLICAS_ENV = "SKYFLOW_REPLICAS"
_PANEL = "Connection"


@dataclass(frozen=True)
class Connection:
    server: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    tlsca: str | None = None
    inbox_prefix: str | None = None
    # Replicas for the stream if this command creates it: `skyctl init --replicas`,
    # else $SKYFLOW_REPLICAS, else 1. An existing stream keeps its own.
    replicas: int | None = None

    def __post_init__(self) -> None:
        # Bytes that are not UTF-8 arrive as lone surrogates, which no socket, subject or
        # CONNECT can carry: refused here, in one line, before anything is sent. (File
        # names may hold any bytes: the files say for themselves.)
        for name, value in vars(self).items():
            if isinstance(value, str) and name not in ("creds", "tlsca"):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    from registry.errors import InvalidInput

                    flag = f"--{name.replace('_', '-')}"
                    raise InvalidInput(flag, value, "it is not UTF-8 text") from None

    def stream_replicas(self) -> int:
        if self.replicas is not None:
            return self.replicas
        raw = os.environ.get(REPLICAS_ENV, "").strip()
        if not raw:
            return 1
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 5:
            from registry.errors import InvalidInput

            raise InvalidInput(REPLICAS_ENV, raw, "must be a whole number from 1 to 5")
        return int(raw)

    def credentials(self) -> "Credentials":
        from registry.jetstream.credentials import Credentials

        return Credentials.from_env(
            user=self.user,
            password=self.password,
            token=self.token,
            creds_file=self.creds,
            tls_ca=self.tlsca,
            inbox_prefix=self.inbox_prefix,
        )

    async def open(self, *, keep_reconnecting: bool = False, writes: bool = False) -> "Registry":
        """The registry on the server. A command that lives on (a watch, a follow) keeps
        reconnecting; the others fail fast, and get the client that starts fastest. Only a
        command that ``writes`` creates the registry's streams where they are missing: a
        read pointed at a server that is no registry says so (``NotARegistry``)."""
        from events.stream import StreamSpec
        from registry.client import Registry

        return await Registry.connect(
            self.server,
            credentials=self.credentials(),
            keep_reconnecting=keep_reconnecting,
            spec=StreamSpec(replicas=self.stream_replicas()),
            on_skipped=_warn,
            create=writes,
        )

    async def open_log(self) -> "JetStreamLog":
        """The log itself, for administration (``skyctl init``)."""
        from events.stream import StreamSpec
        from registry.jetstream import open_log

        return await open_log(
            self.server,
            credentials=self.credentials(),
            long_lived=False,
            spec=StreamSpec(replicas=self.stream_replicas()),
            provisioning=True,  # init scales the stream to what is asked
        )


def _warn(skipped: object) -> None:
    """One line per unreadable message, however many reads of one command meet it."""
    warn_once(str(skipped))


_PARAMETERS = [
    inspect.Parameter(
        "server",
        inspect.Parameter.KEYWORD_ONLY,
        default=DEFAULT_URL,
        annotation=Annotated[
            str,
            typer.Option(
                "--server",
                "-S",
                envvar="NATS_URL",
                metavar="URL",
                rich_help_panel=_PANEL,
                help="NATS server URL; a cluster's as a comma-separated list.",
            ),
        ],
    ),
    inspect.Parameter(
        "user",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--user", envvar="NATS_USER", rich_help_panel=_PANEL, help="User name."),
        ],
    ),
    inspect.Parameter(
        "password",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--password",
                envvar="NATS_PASSWORD",
                rich_help_panel=_PANEL,
                help="Password.",
                show_envvar=True,
            ),
        ],
    ),
    inspect.Parameter(
        "token",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--token", envvar="NATS_TOKEN", rich_help_panel=_PANEL, help="Auth token."
            ),
        ],
    ),
    inspect.Parameter(
        "creds",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--creds",
                envvar="NATS_CREDS",
                metavar="FILE",
                rich_help_panel=_PANEL,
                help="NATS credentials file (JWT and NKey).",
            ),
        ],
    ),
    inspect.Parameter(
        "tlsca",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--tlsca",
                envvar="NATS_CA",
                metavar="FILE",
                rich_help_panel=_PANEL,
                help="CA certificate to verify the server's TLS certificate.",
            ),
        ],
    ),
    inspect.Parameter(
        "inbox_prefix",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--inbox-prefix",
                envvar="NATS_INBOX_PREFIX",
                metavar="PREFIX",
                rich_help_panel=_PANEL,
                help="Subject prefix for replies (default _INBOX); a server that keeps each "
                "user's replies apart names it, e.g. _INBOX_<user>.",
            ),
        ],
    ),
]
_NAMES = [p.name for p in _PARAMETERS]

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(command: F) -> F:
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "conn"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        conn = Connection(**{name: kwargs.pop(name) for name in _NAMES})
        return command(*args, conn=conn, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *_PARAMETERS])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
