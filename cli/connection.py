"""The connection flags every server-facing command takes, declared once.

``@connection_options`` adds ``--server``, ``--context`` and the credential flags (named as
in the nats CLI, with the same environment variables) to a typer command and hands them to
it as one ``conn: Connection``; a command never repeats them.

Each setting comes from the first of: its flag, its environment variable (``NATS_URL``,
``NATS_USER``, ...), the nats CLI context in use (``cli/contexts.py``: ``--context``,
``$SKYFLOW_CONTEXT``, ``$NATS_CONTEXT``, the selected one), the default.
"""

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cli.terminal import warn_once

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.jetstream.credentials import Credentials
    from registry.jetstream.log import JetStreamLog

__all__ = [
    "DEFAULT_URL",
    "REPLICAS_ENV",
    "Borrow",
    "Connection",
    "NotHosted",
    "connection_options",
    "hosted_by",
    "warn_skipped",
]

DEFAULT_URL = "nats://127.0.0.1:4222"  # the same as registry.jetstream's, without importing nats
REPLICAS_ENV = "SKYFLOW_REPLICAS"
_PANEL = "Connection"


_FILES = ("creds", "tlsca", "nkey", "tlscert", "tlskey")


class NotHosted(Exception):
    """The node agent hosting this command does not serve it as asked (another server or
    user, a watch, a write): the client runs it itself. Never shown to a user."""


# A host's registry for a command's connection (its settings, whether it lives on, whether
# it writes); NotHosted when the host cannot serve it.
Borrow = Callable[["Connection", bool, bool], "Registry"]
_HOST: ContextVar[Borrow | None] = ContextVar("skyflow_connection_host", default=None)


@contextlib.contextmanager
def hosted_by(borrow: Borrow) -> Iterator[None]:
    """Within this block a command's ``Connection.open`` is the host's warm registry
    (``cli/agent.py``), not a connection of its own."""
    token = _HOST.set(borrow)
    try:
        yield
    finally:
        _HOST.reset(token)


@dataclass(frozen=True)
class Connection:
    server: str = DEFAULT_URL
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log line
    token: str | None = field(default=None, repr=False)
    creds: str | None = None
    tlsca: str | None = None
    inbox_prefix: str | None = None
    # Replicas for the stream if this command creates it: `skyctl init --replicas`,
    # else $SKYFLOW_REPLICAS, else 1. An existing stream keeps its own.
    replicas: int | None = None
    nkey: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    context: str | None = None  # the nats CLI context the settings above came from, if any
    # A creds file's contents, for a client that has them but no file (the web UI's
    # sign-in): handed to the client as they are, never written to a file.
    creds_text: str | None = field(default=None, repr=False)
    # Whether NATS_* in the environment fill in what is not set here, as for a command;
    # not for a connection on someone else's behalf (the UI's signed-in people).
    environment: bool = True

    def __post_init__(self) -> None:
        # Bytes that are not UTF-8 arrive as lone surrogates, which no socket, subject or
        # CONNECT can carry: refused here, in one line, before anything is sent. (File
        # names may hold any bytes: the files say for themselves.)
        for name, value in vars(self).items():
            if isinstance(value, str) and name not in _FILES:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    from registry.errors import InvalidInput

                    flag = f"--{name.replace('_', '-')}"
                    raise InvalidInput(flag, value, "it is not UTF-8 text") from None

    @classmethod
    def resolve(cls, context: str | None = None, **given: Any) -> "Connection":
        """The connection from what the flags and environment ``given`` (None: not given),
        over the nats CLI context in use (``context`` names one), over the defaults."""
        from cli.contexts import chosen

        chosen_context = chosen(context)
        values: dict[str, Any] = chosen_context.connection() if chosen_context else {}
        values.update({key: value for key, value in given.items() if value is not None})
        return cls(**values, context=chosen_context.name if chosen_context else None)

    def reach(self) -> tuple[str | None, ...]:
        """Where and as whom this connection reads: equal for two connections that reach the
        same server(s) as the same user the same way (the context's name and the replicas a
        new stream would get aside). The agent serves a command only with its own."""
        return (
            self.server,
            self.user,
            self.password,
            self.token,
            self.creds,
            self.creds_text,
            self.tlsca,
            self.inbox_prefix,
            self.nkey,
            self.tlscert,
            self.tlskey,
        )

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
            None if self.environment else {},
            user=self.user,
            password=self.password,
            token=self.token,
            creds_file=self.creds,
            creds_text=self.creds_text,
            tls_ca=self.tlsca,
            inbox_prefix=self.inbox_prefix,
            nkey_file=self.nkey,
            tls_cert=self.tlscert,
            tls_key=self.tlskey,
        )

    async def open(self, *, keep_reconnecting: bool = False, writes: bool = False) -> "Registry":
        """The registry on the server. A command that lives on (a watch, a follow) keeps
        reconnecting; the others fail fast, and get the client that starts fastest. Only a
        command that ``writes`` creates the registry's streams where they are missing: a
        read pointed at a server that is no registry says so (``NotARegistry``)."""
        borrow = _HOST.get()
        if borrow is not None:
            return borrow(self, keep_reconnecting, writes)
        from events.stream import StreamSpec
        from registry.client import Registry

        return await Registry.connect(
            self.server,
            credentials=self.credentials(),
            keep_reconnecting=keep_reconnecting,
            spec=StreamSpec(replicas=self.stream_replicas()),
            on_skipped=warn_skipped,
            create=writes,
        )

    async def open_log(self) -> "JetStreamLog":
        """The log itself, for administration (``skyctl init``)."""
        if _HOST.get() is not None:
            raise NotHosted("administration is not a read")
        from events.stream import StreamSpec
        from registry.jetstream import open_log

        return await open_log(
            self.server,
            credentials=self.credentials(),
            long_lived=False,
            spec=StreamSpec(replicas=self.stream_replicas()),
            provisioning=True,  # init scales the stream to what is asked
        )


def warn_skipped(skipped: object) -> None:
    """One line per unreadable message, however many reads of one command meet it."""
    warn_once(str(skipped))


def _file_option(name: str, flag: str, envvar: str, help: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(flag, envvar=envvar, metavar="FILE", rich_help_panel=_PANEL, help=help),
        ],
    )


_PARAMETERS = [
    inspect.Parameter(
        "server",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--server",
                "-S",
                envvar="NATS_URL",
                metavar="URL",
                rich_help_panel=_PANEL,
                help="NATS server URL; a cluster's as a comma-separated list. Default: the "
                f"context's url, else {DEFAULT_URL}.",
            ),
        ],
    ),
    inspect.Parameter(
        "context",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--context",
                metavar="NAME",
                rich_help_panel=_PANEL,
                # Eager: a namespace option's default comes from the context (cli/options.py).
                is_eager=True,
                help="The nats CLI context to use (~/.config/nats/context/NAME.json); "
                "default $SKYFLOW_CONTEXT, else $NATS_CONTEXT, else the selected one "
                "(nats context select, skyctl config use-context). Flags and NATS_* "
                "variables override its settings.",
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
    _file_option("nkey", "--nkey", "NATS_NKEY", "NKey seed file (a user known by its key)."),
    _file_option(
        "tlscert",
        "--tlscert",
        "NATS_CERT",
        "Client certificate, for servers that verify clients (with --tlskey).",
    ),
    _file_option("tlskey", "--tlskey", "NATS_KEY", "Private key of the client certificate."),
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
                help="Subject prefix for replies (default _INBOX; when the server refuses "
                "that to a user, _INBOX_<user>); a server that keeps each user's replies "
                "apart names it.",
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
        given = {name: kwargs.pop(name) for name in _NAMES}
        ctx = next((v for v in (*args, *kwargs.values()) if hasattr(v, "invoked_subcommand")), None)
        if ctx is not None and ctx.invoked_subcommand is not None:
            # A group's callback on the way to its subcommand, which takes the connection
            # flags of its own: no context is read here, so none can fail here.
            given.pop("context")
            conn = Connection(**{k: v for k, v in given.items() if v is not None})
        else:
            conn = Connection.resolve(**given)
        return command(*args, conn=conn, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *_PARAMETERS])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
