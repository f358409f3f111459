"""Who may acknowledge an audit break (nats-server-auth.conf): the admin only. A writer who
could acknowledge its own forged event would silence ``audit verify``, so the server
refuses every other role's publish on the acknowledgements' subject."""

from __future__ import annotations

from collections.abc import Iterator

import nats.errors
import nats.js.errors
import pytest

from events import Service, encode, new_event_id, utc_now
from events.audit import BreakAcknowledged
from events.service import ServiceCreated
from events.subjects import ACKNOWLEDGED_SUBJECT
from registry.jetstream.server import NatsServer
from registry.services.decisions import chain_hash
from tests.helpers import raw_as, skyctl
from tests.servers import PASSWORDS, auth_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("audit-roles")) as running:
        init = skyctl(
            "init",
            *("--user", "admin", "--password", PASSWORDS["admin"]),
            *("--namespace", "shop"),
            url=running.url,
        )
        assert init.code == 0, init.err
        yield running


def as_user(user: str) -> tuple[str, ...]:
    inbox = "_INBOX" if user == "admin" else f"_INBOX_{user}"
    return ("--user", user, "--password", PASSWORDS[user], "--inbox-prefix", inbox)


async def test_only_the_admin_acknowledges_a_break(server: NatsServer) -> None:
    url = server.url
    # One bad publish (by the admin, who may publish anything): a link to nothing there.
    forged = ServiceCreated(
        id=new_event_id(),
        time=utc_now(),
        actor="mallory@h",
        prev=chain_hash(b"elsewhere"),
        service=Service(namespace="shop", name="ghost"),
    )
    async with raw_as(url, "admin", PASSWORDS["admin"]) as admin:
        bad = await admin.nc.jetstream().publish("skyflow.svc.shop.ghost", encode(forged))
    failing = skyctl("audit", "verify", *as_user("viewer"), url=url)
    assert failing.code == 1 and f"BROKEN seq {bad.seq} " in failing.out

    # A writer acknowledging the break with raw nats-py: refused by the server.
    own = BreakAcknowledged(
        id=new_event_id(), time=utc_now(), actor="shop-writer", seq=bad.seq, reason="mine"
    )
    async with raw_as(url, "shop-writer", PASSWORDS["shop-writer"]) as writer:
        with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
            await writer.nc.jetstream().publish(ACKNOWLEDGED_SUBJECT, encode(own), timeout=1)
        assert await writer.refused(f'publish to "{ACKNOWLEDGED_SUBJECT}"')
    # And through skyctl: refused, nothing written.
    refused = skyctl(
        "audit", "acknowledge", str(bad.seq), "--reason", "mine", *as_user("shop-writer"), url=url
    )
    assert refused.code == 3 and "permission" in refused.err.lower(), refused.err
    assert len(refused.err.splitlines()) == 1
    still = skyctl("audit", "verify", *as_user("viewer"), url=url)
    assert still.code == 1

    done = skyctl(
        "audit",
        "acknowledge",
        str(bad.seq),
        "--reason",
        "INC-7: a test",
        *as_user("admin"),
        url=url,
    )
    assert done.code == 0, done.err
    passing = skyctl("audit", "verify", *as_user("viewer"), url=url)
    assert passing.code == 0, passing.out + passing.err
    assert f"ACKNOWLEDGED seq {bad.seq} " in passing.out
    assert "acknowledged by admin at " in passing.out
