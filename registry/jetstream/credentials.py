"""How a client proves who it is to the server, the way the nats tools take it.

Flags win over the environment: ``--user``/``--password`` (``NATS_USER``,
``NATS_PASSWORD``), ``--token`` (``NATS_TOKEN``), ``--creds`` (``NATS_CREDS``), and
``--tlsca`` (``NATS_CA``) for a server certificate signed by a private CA.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput

__all__ = ["Credentials", "local_actor"]

_TOKENS = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7}")


def local_actor() -> str:
    """Who is acting when the server does not authenticate: the local user at this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds_file: Path | None = None
    tls_ca: Path | None = None
    # Where replies come back. A server that gives each user replies of its own (as
    # nats-server-auth.conf does, so no one reads another's) names the prefix to use.
    inbox_prefix: str = "_INBOX"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        creds_file: str | None = None,
        tls_ca: str | None = None,
        inbox_prefix: str | None = None,
    ) -> Credentials:
        env = os.environ if env is None else env
        creds = creds_file or env.get("NATS_CREDS")
        ca = tls_ca or env.get("NATS_CA")
        prefix = inbox_prefix or env.get("NATS_INBOX_PREFIX") or "_INBOX"
        if not _TOKENS.fullmatch(prefix):
            raise InvalidInput(
                "inbox prefix", prefix, "use letters, digits, '_' and '-', tokens separated by '.'"
            )
        result = cls(
            user=user or env.get("NATS_USER") or None,
            password=password or env.get("NATS_PASSWORD") or None,
            token=token or env.get("NATS_TOKEN") or None,
            creds_file=Path(creds) if creds else None,
            tls_ca=Path(ca) if ca else None,
            inbox_prefix=prefix,
        )
        for what, path in (("creds file", result.creds_file), ("CA file", result.tls_ca)):
            if path is not None and not path.is_file():
                raise InvalidInput(what, str(path), "no such file")
        if result.password and not result.user:
            raise InvalidInput("password", "***", "a password needs a user (--user or NATS_USER)")
        return result

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        options: dict[str, Any] = {"inbox_prefix": self.inbox_prefix}
        if self.user:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.token:
            options["token"] = self.token
        if self.creds_file:
            options["user_credentials"] = str(self.creds_file)
        if self.tls_ca:
            import ssl

            context = ssl.create_default_context(cafile=str(self.tls_ca))
            options["tls"] = context
        return options
