"""Tamper evidence: per-service hash chains, recomputed by ``skyctl audit verify``."""

from __future__ import annotations

from events import Service, encode, new_event_id, utc_now
from events.service import ServiceCreated
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.log.entry import StoredMessage
from registry.services.audit import ChainChecker
from registry.services.decisions import chain_hash
from tests.helpers import raw_publish, skyctl

SUBJECT = "skyflow.svc.default.web"


def created(prev: str | None, name: str = "web") -> bytes:
    return encode(
        ServiceCreated(
            id=new_event_id(),
            time=utc_now(),
            actor="mallory@h",
            prev=prev,
            service=Service(name=name),
        )
    )


def test_checker_accepts_an_honest_chain_and_names_each_break() -> None:
    first = created(None)
    second = created(chain_hash(first))
    checker = ChainChecker()
    assert (
        checker.check_all([StoredMessage(1, SUBJECT, first), StoredMessage(2, SUBJECT, second)])
        == []
    )
    forged = created("0" * 64)
    unlinked = created(None)
    breaks = checker.check_all(
        [
            StoredMessage(3, SUBJECT, forged),
            StoredMessage(4, SUBJECT, unlinked),
            StoredMessage(5, SUBJECT, b"junk"),
        ]
    )
    assert [b.seq for b in breaks] == [3, 4, 5]
    assert "links to 000000000000…, expected" in breaks[0].problem
    assert "(hash of seq 2)" in breaks[0].problem
    assert breaks[1].problem.startswith("no link; expected")
    assert breaks[2].problem.startswith("unreadable")
    assert checker.check(StoredMessage(6, "skyflow.svc.default.other", second)) is not None


async def test_verify_catches_events_published_around_the_registry(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        for name in ("web", "db"):
            await registry.create(Service(name=name))
        await registry.delete("default", "db")
        clean = skyctl("audit", "verify", url=url)
        assert clean.code == 0, clean.out + clean.err
        assert (
            clean.out
            == "checked 6 events in 4 chains (2 services, 2 addresses): every link holds\n"
        )

        # Straight to the stream: one with a forged link, one with none at all.
        last = await registry.log.last(SUBJECT)
        assert last is not None
        ack1 = await raw_publish(url, SUBJECT, created(chain_hash(b"something else")))
        ack2 = await raw_publish(url, "skyflow.svc.default.db", created(None, "db"))

    result = skyctl("audit", "verify", url=url)
    assert result.code == 1
    broken = [line for line in result.out.splitlines() if line.startswith("BROKEN")]
    assert len(broken) == 3
    assert broken[0].startswith(f"BROKEN seq {ack1.seq} {SUBJECT}: links to ")
    assert f"(hash of seq {last.seq})" in broken[0]
    assert broken[1].startswith(f"BROKEN seq {ack2.seq} skyflow.svc.default.db: no link")
    # The forged create of web replaced the event that held web's cluster IP: the address
    # ledger at the end of the log finds the IP held by a service that no longer has it.
    assert "is held by default/web" in broken[2] and "not a live service" in broken[2]
    assert result.err == "checked 8 events in 4 chains (2 services, 2 addresses): 3 breaks\n"
