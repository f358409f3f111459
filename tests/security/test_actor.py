"""Every event names who caused it: the authenticated NATS user, else user@host."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.jetstream.server import NatsServer
from tests.helpers import skyctl

AUTH_CONF = """
listen: 127.0.0.1:4222
jetstream { store_dir: $SKYFLOW_STORE_DIR, sync_interval: always }
authorization { users = [ {user: alice, password: wonderland} ] }
"""


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[NatsServer]:
    config = tmp_path / "auth.conf"
    config.write_text(AUTH_CONF)
    server = NatsServer(tmp_path / "store", config=config).start()
    try:
        yield server
    finally:
        server.stop()


def actors(url: str, name: str, *auth: str) -> list[str]:
    result = skyctl("history", "service", name, "-o", "json", *auth, url=url)
    assert result.code == 0, result.err
    return [item["event"]["actor"] for item in json.loads(result.out)]


def test_without_authentication_the_actor_is_the_local_user(url: str, ns: str) -> None:
    skyctl("create", "svc", "who", "-n", ns, url=url)
    result = skyctl("history", "svc", "who", "-n", ns, "-o", "json", url=url)
    assert json.loads(result.out)[0]["event"]["actor"] == (
        f"{getpass.getuser()}@{socket.gethostname()}"
    )


def test_an_authenticated_user_is_the_actor(auth_server: NatsServer) -> None:
    url = auth_server.url
    auth = ["--user", "alice", "--password", "wonderland"]
    assert skyctl("create", "svc", "web", *auth, url=url).code == 0
    by_env = skyctl(
        "delete", "svc", "web", url=url, env={"NATS_USER": "alice", "NATS_PASSWORD": "wonderland"}
    )
    assert by_env.code == 0, by_env.err
    assert actors(url, "web", *auth) == ["alice", "alice"]


def test_wrong_or_missing_credentials_are_one_line(auth_server: NatsServer) -> None:
    for auth in ([], ["--user", "alice", "--password", "nope"]):
        result = skyctl("get", "svc", *auth, url=auth_server.url)
        assert result.code == 3
        assert result.err.startswith(
            f"error: NATS at {auth_server.url} refused the credentials (authorization violation)"
        )
        assert result.err.count("\n") == 1
