"""What the UI's test modules share: signing in over httpx against the ASGI app, the
users' credentials for skyctl, a server with a service of several revisions, and hostile
values for the escaping tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from starlette.applications import Starlette

from registry.jetstream.server import NatsServer
from tests.helpers import skyctl
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server

HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def as_user(user: str) -> tuple[str, ...]:
    return ("--user", user, "--password", PASSWORDS[user])


@contextlib.asynccontextmanager
async def browsing(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the app; its sessions (and their connections) closed after."""
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http
    finally:
        await app.state.sessions.close()


async def sign_in(client: httpx.AsyncClient, user: str, password: str | None = None) -> None:
    """Signed in as ``user`` (their own password unless given): the app's 303."""
    password = PASSWORDS[user] if password is None else password
    signed = await client.post("/login", data={"user": user, "password": password})
    assert signed.status_code == 303, signed.text


@contextlib.asynccontextmanager
async def signed_in(url: str, user: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the UI for the server at ``url``, signed in as ``user``."""
    from cli.connection import Connection
    from cli.webapp import make_app

    async with browsing(make_app(Connection(server=url))) as client:
        await sign_in(client, user)
        yield client


def as_admin(url: str, *steps: tuple[str, ...]) -> None:
    """Each skyctl command as the admin, each succeeding."""
    for step in steps:
        done = skyctl(*step, *as_user("admin"), url=url)
        assert done.code == 0, (step, done.err)


@contextlib.contextmanager
def shop_server(directory: Path, *more: tuple[str, ...]) -> Iterator[NatsServer]:
    """A server with users and ``web`` in ``shop`` at three revisions: created (selector
    app=web, tier=front), relabelled (tier=back), applied with selector app=web2; then
    the ``more`` commands, as the admin."""
    manifest = directory / "web.yaml"
    manifest.write_text(
        "apiVersion: skyflow.io/v1\nkind: Service\nmetadata: {name: web, namespace: shop, labels: "
        "{tier: back}}\nspec: {selector: {app: web2}, ports: [{port: 80, targetPort: 8080}]}\n"
    )
    with auth_server(directory) as running:
        as_admin(
            running.url,
            ("init", *INIT_TEAMS),
            ("create", "svc", "web", "-n", "shop", "-s", "app=web", "-p", "80:8080",
             "--labels", "tier=front"),
            ("label", "svc", "web", "-n", "shop", "tier=back", "--overwrite"),
            ("apply", "-f", str(manifest)),
            *more,
        )  # fmt: skip
        yield running


def hostile_actors(url: str, namespace: str, name: str = "evil") -> None:
    """``name`` in ``namespace`` created by the first hostile actor and relabelled by the
    second (the actor is the local user on a server without users)."""
    for value in HOSTILE:
        env = {"LOGNAME": value, "USER": value}
        done = skyctl("create", "svc", name, "-n", namespace, "-s", "app=x", url=url, env=env)
        if done.code != 0:  # the second actor updates it
            done = skyctl("label", "svc", name, "-n", namespace, "x=y", url=url, env=env)
        assert done.code == 0, done.err
