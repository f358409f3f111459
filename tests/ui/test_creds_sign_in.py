"""Signing in to the web UI with a creds file's contents, against a real nats-server in
operator mode (JWTs signed with real NKeys, as ``nsc`` makes them): the person reads as
that user; a creds file the server does not know, one that is not a creds file, or one
whose JWT has expired is a 401 naming why, in one line."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.connection import Connection
from cli.webapp import make_app
from registry.jetstream.server import NatsServer
from tests.creds import operator_server, operator_setup
from tests.ui.support import HOSTILE, browsing


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, Path]]:
    """An operator-mode server with the registry and ``web`` in ``shop``; carol's creds
    (and, beside them, ``old.creds``: a user whose JWT has expired)."""
    directory = tmp_path_factory.mktemp("ui-creds")
    with operator_server(directory, "carol", {"old": {"exp": int(time.time()) - 60}}) as (
        server,
        creds,
    ):
        yield server, creds


async def test_a_pasted_creds_file_signs_in_as_its_user(operator: tuple[NatsServer, Path]) -> None:
    server, creds = operator
    # As a browser sends a textarea: CRLF line ends (nats-py reads the file line by line).
    pasted = creds.read_text().replace("\n", "\r\n")
    async with browsing(make_app(Connection(server=server.url))) as client:
        signed = await client.post("/login", data={"creds": pasted})
        assert signed.status_code == 303, signed.text
        page = await client.get("/")
        assert page.status_code == 200, page.text
        assert "signed in as carol" in page.text
        assert '<a href="/services/shop/web">web</a>' in page.text
        service = await client.get("/services/shop/web")
        assert service.status_code == 200, service.text
        assert "Created By:" in service.text and "carol" in service.text
        for secret in re.findall(r"^(SU[A-Z0-9]+|eyJ\S+)$", creds.read_text(), re.M):
            assert secret not in page.text and secret not in service.text
        # The same creds from another browser: the same person, one connection.
        sessions = client._transport.app.state.sessions  # type: ignore[attr-defined]
        again = await client.post("/login", data={"creds": creds.read_text()})
        assert again.status_code == 303
        assert len(sessions.people) == 1 and len(sessions.by_id) == 2


@pytest.mark.parametrize(
    ("contents", "why"),
    [
        ("unknown", "Authorization Violation"),
        ("old", "Authorization Violation"),
        ("not a creds file", "invalid creds file"),
        (HOSTILE[0], "invalid creds file"),
    ],
)
async def test_a_wrong_creds_file_is_a_401_naming_why_in_one_line(
    operator: tuple[NatsServer, Path], tmp_path: Path, contents: str, why: str
) -> None:
    server, creds = operator
    if contents == "unknown":  # a user of an operator this server has never heard of
        _, other = operator_setup(tmp_path, "mallory")
        contents = other.read_text()
    elif contents == "old":
        contents = (creds.parent / "old.creds").read_text()
    async with browsing(make_app(Connection(server=server.url))) as client:
        refused = await client.post("/login", data={"creds": contents})
        assert refused.status_code == 401, refused.text
        (line,) = re.findall(r'<p class="error">(.*?)</p>', refused.text, re.S)
        assert line.startswith("Not signed in: ") and "\n" not in line, line
        assert why.lower() in line.lower(), line
        assert HOSTILE[0] not in refused.text
        assert html.escape(HOSTILE[0]) not in refused.text  # the contents are not echoed
        after = await client.get("/", headers={"accept": "text/html"})
        assert after.status_code == 303  # still signed out


async def test_nothing_of_the_uis_environment_signs_anyone_in(
    operator: tuple[NatsServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI's own NATS_CREDS (or, in the agent, a hosted command's environment of the
    moment) never fills in a visitor's connection: a made-up token stays refused."""
    server, creds = operator
    monkeypatch.setenv("NATS_CREDS", str(creds))
    async with browsing(make_app(Connection(server=server.url))) as client:
        refused = await client.post("/login", data={"token": "made-up"})
        assert refused.status_code == 401, refused.text
        assert "Not signed in: " in refused.text
