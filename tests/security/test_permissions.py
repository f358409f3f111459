"""Roles from nats-server-auth.conf, enforced by the server, reported in one line; and TLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.jetstream.server import NatsServer
from tests.helpers import Result, skyctl
from tests.servers import AUTH_ENV, PASSWORDS, ROOT, tls_server

ENV = AUTH_ENV


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server with users and the registry made (by the admin): each test stands on its
    own, whichever worker runs it and in whatever order."""
    store = tmp_path_factory.mktemp("auth") / "store"
    with NatsServer(store, config=ROOT / "nats-server-auth.conf", env=ENV) as server:
        assert as_user(server, "admin", "init").code == 0
        yield server


@pytest.fixture
def bare_auth_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server with users and no registry yet."""
    with NatsServer(tmp_path / "store", config=ROOT / "nats-server-auth.conf", env=ENV) as server:
        yield server


def as_user(server: NatsServer, user: str, *args: str) -> Result:
    """skyctl as ``user``, with the reply prefix the server gives it (its own inbox)."""
    inbox = [] if user == "admin" else ["--inbox-prefix", f"_INBOX_{user}"]
    return skyctl(*args, "--user", user, "--password", PASSWORDS[user], *inbox, url=server.url)


def denied(result: Result, what: str) -> None:
    assert result.code == 3, result
    assert result.out == ""
    assert result.err.startswith(f"error: permission denied: {what}"), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_first_use_needs_an_admin(bare_auth_server: NatsServer) -> None:
    auth_server = bare_auth_server
    # A read never creates the registry: on a server without it, it says so.
    read = as_user(auth_server, "viewer", "get", "svc")
    assert read.code == 3 and read.err.count("\n") == 1, read.err
    assert "no SkyFlow registry" in read.err and "skyctl init" in read.err
    assert as_user(auth_server, "admin", "get", "svc").code == 3  # not even an admin's read
    # A write would, but only an admin may create it.
    denied(
        as_user(auth_server, "shop-writer", "create", "svc", "x", "-n", "shop"),
        "create the registry's stream",
    )
    assert as_user(auth_server, "admin", "init").code == 0
    assert as_user(auth_server, "viewer", "get", "svc").code == 0


def test_admin_writes_anywhere(auth_server: NatsServer) -> None:
    for ns in ("default", "shop", "ops"):
        result = as_user(auth_server, "admin", "create", "svc", "adm", "-n", ns)
        assert result.code == 0, result.err
    assert as_user(auth_server, "admin", "delete", "svc", "adm", "-n", "ops").code == 0


def test_namespace_writer_writes_only_its_namespaces(auth_server: NatsServer) -> None:
    assert as_user(auth_server, "shop-writer", "create", "svc", "cart", "-n", "shop").code == 0
    assert (
        as_user(
            auth_server,
            "shop-writer",
            "create",
            "svc",
            "cart",
            "-n",
            "shop-staging",
        ).code
        == 0
    )
    assert (
        as_user(
            auth_server,
            "shop-writer",
            "delete",
            "svc",
            "cart",
            "-n",
            "shop-staging",
        ).code
        == 0
    )
    denied(
        as_user(auth_server, "shop-writer", "create", "svc", "cart", "-n", "ops"),
        'create or delete services in namespace "ops"',
    )
    denied(
        as_user(auth_server, "shop-writer", "delete", "svc", "adm", "-n", "default"),
        'create or delete services in namespace "default"',
    )
    # It reads everything, and what it wrote carries its name.
    assert "adm" in as_user(auth_server, "shop-writer", "get", "svc", "-A").out
    history = json.loads(
        as_user(
            auth_server, "shop-writer", "history", "svc", "cart", "-n", "shop", "-o", "json"
        ).out
    )
    assert [item["event"]["actor"] for item in history] == ["shop-writer"]


def test_viewer_reads_and_writes_nothing(auth_server: NatsServer) -> None:
    as_user(auth_server, "admin", "create", "svc", "seen", "-n", "shop")
    assert "seen" in as_user(auth_server, "viewer", "get", "svc", "seen", "-n", "shop").out
    assert as_user(auth_server, "viewer", "history", "svc", "seen", "-n", "shop").code == 0
    assert as_user(auth_server, "viewer", "events", "-A").code == 0
    assert as_user(auth_server, "viewer", "get", "svc", "-A", "--at", "1").code == 0
    assert as_user(auth_server, "viewer", "audit", "verify").code == 0
    denied(
        as_user(auth_server, "viewer", "create", "svc", "mine", "-n", "shop"),
        'create or delete services in namespace "shop"',
    )
    denied(
        as_user(auth_server, "viewer", "delete", "svc", "seen", "-n", "shop"),
        'create or delete services in namespace "shop"',
    )


def test_anonymous_and_wrong_passwords_are_refused(auth_server: NatsServer) -> None:
    for result in (
        skyctl("get", "svc", url=auth_server.url),
        skyctl("get", "svc", "--user", "viewer", "--password", "guess", url=auth_server.url),
    ):
        assert result.code == 3
        assert result.err.startswith(f"error: NATS at {auth_server.url} refused the credentials")
        assert result.err.count("\n") == 1


def test_credentials_from_the_environment(auth_server: NatsServer) -> None:
    result = skyctl(
        "get",
        "svc",
        "-n",
        "shop",
        url=auth_server.url,
        env={
            "NATS_USER": "viewer",
            "NATS_PASSWORD": PASSWORDS["viewer"],
            "NATS_INBOX_PREFIX": "_INBOX_viewer",
        },
    )
    assert result.code == 0, result.err


TOKEN_CONF = """
listen: 127.0.0.1:4222
jetstream { store_dir: $SKYFLOW_STORE_DIR }
authorization { token: $SKYFLOW_TOKEN }
"""


def test_token_authentication(tmp_path: Path) -> None:
    config = tmp_path / "token.conf"
    config.write_text(TOKEN_CONF)
    with NatsServer(tmp_path / "store", config=config, env={"SKYFLOW_TOKEN": "s3cr3t"}) as server:
        assert skyctl("init", "--token", "s3cr3t", url=server.url).code == 0
        assert skyctl("get", "svc", "--token", "s3cr3t", url=server.url).code == 0
        assert skyctl("get", "svc", url=server.url, env={"NATS_TOKEN": "s3cr3t"}).code == 0
        assert skyctl("get", "svc", "--token", "nope", url=server.url).code == 3


def test_tls_connection_verified_against_the_ca(tmp_path: Path) -> None:
    with tls_server(tmp_path) as (server, files):
        ca_file = files.ca
        assert server.url.startswith("tls://")
        auth = ["--user", "admin", "--password", PASSWORDS["admin"]]
        made = skyctl("create", "svc", "secure", *auth, "--tlsca", str(ca_file), url=server.url)
        assert made.code == 0, made.err
        got = skyctl("get", "svc", "secure", *auth, url=server.url, env={"NATS_CA": str(ca_file)})
        assert got.code == 0 and "secure" in got.out
        # Without the CA the certificate cannot be verified: refused, in one line.
        unverified = skyctl("get", "svc", *auth, url=server.url)
        assert unverified.code == 3
        assert unverified.err.startswith(f"error: cannot reach NATS at {server.url}")
        assert "certificate" in unverified.err and unverified.err.count("\n") == 1
        plain = skyctl(
            "get",
            "svc",
            *auth,
            "--tlsca",
            str(ca_file),
            url=server.url.replace("tls://", "nats://"),
        )
        assert plain.code == 0  # nats-py upgrades to TLS when the server requires it


def test_a_creds_file_as_the_nats_tools_take_it(tmp_path: Path) -> None:
    from tests.creds import operator_setup

    operator, creds = operator_setup(tmp_path, "carol")
    config = tmp_path / "server.conf"
    config.write_text(
        "listen: 127.0.0.1:4222\njetstream { store_dir: $SKYFLOW_STORE_DIR }\n"
        f"include ./{operator.name}\n"
    )
    with NatsServer(tmp_path / "store", config=config) as server:
        made = skyctl("create", "svc", "jwt", "--creds", str(creds), url=server.url)
        assert made.code == 0, made.err
        history = skyctl(
            "history", "svc", "jwt", "-o", "json", url=server.url, env={"NATS_CREDS": str(creds)}
        )
        actor = json.loads(history.out)[0]["event"]["actor"]
        assert actor.startswith("carol (U") and actor.endswith(")")
        assert skyctl("get", "svc", url=server.url).code == 3  # no creds: refused
    missing = skyctl("get", "svc", "--creds", str(tmp_path / "nope.creds"), url=server.url)
    assert missing.code == 2
    assert missing.err.startswith(f'error: invalid creds file "{tmp_path / "nope.creds"}"')
