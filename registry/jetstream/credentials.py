"""How a client proves who it is to the server, the way the nats tools take it.

Flags win over the environment: ``--user``/``--password`` (``NATS_USER``,
``NATS_PASSWORD``), ``--token`` (``NATS_TOKEN``), ``--creds`` (``NATS_CREDS``), ``--nkey``
(``NATS_NKEY``, a file holding an NKey seed), ``--tlsca`` (``NATS_CA``) for a server
certificate signed by a private CA, and ``--tlscert``/``--tlskey`` (``NATS_CERT``,
``NATS_KEY``) for a client certificate.

A client that names no inbox prefix gets ``_INBOX``; when the server refuses it that and a
user name is known, ``with_user_inbox`` is the retry with the user's own, ``_INBOX_<user>``
(the convention of ``nats-server-auth.conf``).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    password: str | None = field(default=None, repr=False)  # never in a repr, a log line
    token: str | None = field(default=None, repr=False)
    creds_file: Path | None = None
    tls_ca: Path | None = None
    # Where replies come back. A server that gives each user replies of its own (as
    # nats-server-auth.conf does, so no one reads another's) names the prefix to use.
    inbox_prefix: str = "_INBOX"
    nkey_file: Path | None = None  # an NKey seed (a user known by its public key)
    tls_cert: Path | None = None  # a client certificate, with its key
    tls_key: Path | None = None
    # Whether someone chose ``inbox_prefix`` (a flag, the environment, a context): a
    # chosen prefix is never replaced by ``with_user_inbox``.
    inbox_chosen: bool = False
    # A creds file's contents rather than its path (the web UI's sign-in): given to
    # nats-py as they are, so they are never written to a file.
    creds_text: str | None = field(default=None, repr=False)

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
        nkey_file: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        creds_text: str | None = None,
    ) -> Credentials:
        env = os.environ if env is None else env
        creds = None if creds_text else creds_file or env.get("NATS_CREDS")
        ca = tls_ca or env.get("NATS_CA")
        nkey = nkey_file or env.get("NATS_NKEY")
        cert = tls_cert or env.get("NATS_CERT")
        key = tls_key or env.get("NATS_KEY")
        chosen = inbox_prefix or env.get("NATS_INBOX_PREFIX")
        prefix = chosen or "_INBOX"
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
            nkey_file=Path(nkey) if nkey else None,
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            inbox_chosen=bool(chosen),
            creds_text=creds_text or None,
        )
        for what, path in (
            ("creds file", result.creds_file),
            ("CA file", result.tls_ca),
            ("NKey seed file", result.nkey_file),
            ("client certificate file", result.tls_cert),
            ("client key file", result.tls_key),
        ):
            if path is not None and not path.is_file():
                raise InvalidInput(what, str(path), "no such file")
        if result.password and not result.user:
            raise InvalidInput("password", "***", "a password needs a user (--user or NATS_USER)")
        if (result.tls_cert is None) != (result.tls_key is None):
            if result.tls_cert is not None:
                raise InvalidInput(
                    "client certificate", str(result.tls_cert), "it needs its key (--tlskey)"
                )
            raise InvalidInput(
                "client key", str(result.tls_key), "it needs its certificate (--tlscert)"
            )
        return result

    @property
    def needs_nats_py(self) -> bool:
        """Whether only nats-py can present these: NKey signing (creds, seeds) or a client
        certificate."""
        return (
            self.creds_file is not None
            or self.creds_text is not None
            or self.nkey_file is not None
            or self.tls_cert is not None
        )

    def with_user_inbox(self) -> Credentials | None:
        """These credentials with replies under the user's own prefix, ``_INBOX_<user>``:
        the retry when the server refuses ``_INBOX``. None when there is nothing to retry:
        a prefix someone chose, no user name, or a name no subject token can carry."""
        if self.inbox_chosen or self.inbox_prefix != "_INBOX" or not self.user:
            return None
        prefix = f"_INBOX_{self.user}"
        if not _TOKENS.fullmatch(prefix):
            return None
        return replace(self, inbox_prefix=prefix, inbox_chosen=True)

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
        if self.creds_text:
            from nats.aio.client import RawCredentials

            options["user_credentials"] = RawCredentials(self.creds_text)
        if self.nkey_file:
            options["nkeys_seed"] = str(self.nkey_file)
        if self.tls_ca or self.tls_cert:
            import ssl

            context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
            if self.tls_cert and self.tls_key:
                try:
                    context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
                except (OSError, ssl.SSLError) as exc:
                    reason = f"cannot use it with its key: {exc}"
                    raise InvalidInput("client certificate", str(self.tls_cert), reason) from None
            options["tls"] = context
        return options
