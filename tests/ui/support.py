"""What the UI's test modules share: signing in over httpx against the ASGI app, the
users' credentials for skyctl, and hostile values for the escaping tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette

from tests.servers import PASSWORDS

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
