"""The one adapter between the registry and NATS: the only package that talks to it.

``log.JetStreamLog`` implements ``registry.log.port.Log`` once, over the ``Connection``
protocol (core NATS); two clients implement that protocol, and ``connect`` picks one,
once, at connect, by this rule:

- **nats-py** when the connection must outlive a server restart (``long_lived``: watches,
  followed events, durable subscribers, and library programs by default), when the
  credentials are signed with an NKey (a creds file, a seed) or include a client
  certificate, or for a scheme other than ``nats://``
  and ``tls://`` (websockets);
- **the wire client** otherwise: one-shot commands, whose life is mostly imports.
  It does several servers, TLS with a CA, user/password and tokens.

``SKYFLOW_NATS_CLIENT=nats-py`` (or ``wire``) forces one, for comparing them. Names load
on first use, so importing this package imports neither client. ``server`` runs the
bundled nats-server; ``credentials`` is how a client proves who it is.

May import: ``registry.log``, ``registry.errors``, ``events``; never another domain.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from events.stream import StreamSpec
from registry.errors import InboxRefused, InvalidInput
from registry.jetstream.credentials import Credentials
from registry.jetstream.protocol import DEFAULT_URL

if TYPE_CHECKING:
    from registry.jetstream.connection import Connection
    from registry.jetstream.log import JetStreamLog

__all__ = ["CLIENT_ENV", "DEFAULT_URL", "Client", "choose_client", "connect", "open_log"]

CLIENT_ENV = "SKYFLOW_NATS_CLIENT"
Client = Literal["auto", "nats-py", "wire"]


def choose_client(url: str, credentials: Credentials, *, long_lived: bool) -> Client:
    """The rule above, as a function of what is known before connecting."""
    forced = os.environ.get(CLIENT_ENV, "").strip()
    if forced:
        if forced not in ("nats-py", "wire"):
            raise InvalidInput(CLIENT_ENV, forced, "must be nats-py or wire")
        if forced == "wire" and credentials.needs_nats_py:
            raise InvalidInput(
                CLIENT_ENV,
                forced,
                "the wire client cannot sign with an NKey or present a client certificate",
            )
        return "nats-py" if forced == "nats-py" else "wire"
    schemes = {part.strip().partition("://")[0] for part in url.split(",") if "://" in part}
    if long_lived or credentials.needs_nats_py or schemes - {"nats", "tls"}:
        return "nats-py"
    return "wire"


async def connect(
    url: str = DEFAULT_URL,
    *,
    credentials: Credentials | None = None,
    long_lived: bool = True,
    timeout: float = 2.0,
    client: Client = "auto",
) -> Connection:
    """A connection to the server(s) at ``url`` by the rule above; fails within seconds."""
    credentials = credentials or Credentials()
    if client == "auto":
        client = choose_client(url, credentials, long_lived=long_lived)
    if client == "wire":
        from registry.jetstream.wire import WireConnection

        return await WireConnection.connect(
            url,
            user=credentials.user,
            password=credentials.password,
            token=credentials.token,
            tls_ca=credentials.tls_ca,
            timeout=timeout,
            inbox_prefix=credentials.inbox_prefix,
        )
    from registry.jetstream.natspy import NatsPyConnection

    return await NatsPyConnection.connect(
        url, options=credentials.connect_options(), keep_reconnecting=long_lived, timeout=timeout
    )


async def open_log(
    url: str = DEFAULT_URL,
    *,
    spec: StreamSpec | None = None,
    credentials: Credentials | None = None,
    long_lived: bool = True,
    api_timeout: float = 5.0,
    client: Client = "auto",
    provisioning: bool = False,
    create: bool = True,
) -> JetStreamLog:
    """Connect and open the service log (creating its stream if missing and ``create``,
    checking it).

    When the server refuses replies under ``_INBOX`` and the user has a name but chose no
    prefix, this connects once more with the user's own, ``_INBOX_<user>`` (the refusal
    comes at once, so the retry costs one connection)."""
    from registry.jetstream.log import JetStreamLog

    credentials = credentials or Credentials()

    async def attempt(credentials: Credentials) -> JetStreamLog:
        conn = await connect(
            url,
            credentials=credentials,
            long_lived=long_lived,
            timeout=min(api_timeout, 2.0),
            client=client,
        )
        # A one-shot command's log asks who it is and checks the stream only when it needs
        # to (``JetStreamLog.open``), except that a named user who chose no inbox prefix
        # asks at once: the answer (or the server's refusal of the inbox) decides whether
        # to connect again with the user's own prefix, below.
        own_inbox = conn.auth_required and credentials.with_user_inbox() is not None
        options = {"provisioning": provisioning, "create": create, "identify": own_inbox}
        lazy = not long_lived and not provisioning
        return await JetStreamLog.open(
            conn, spec=spec, api_timeout=api_timeout, lazy=lazy, **options
        )

    try:
        return await attempt(credentials)
    except InboxRefused:
        own = credentials.with_user_inbox()
        if own is None:
            raise
    return await attempt(own)
