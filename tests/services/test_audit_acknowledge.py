"""``audit verify`` as a scheduled check after one bad publish: ``audit acknowledge``
records that the break was investigated, verify then lists it as acknowledged and exits
0, and still fails on any other break; ``--since`` verifies from a sequence on."""

from __future__ import annotations

from events import Service, encode, new_event_id, utc_now
from events.audit import BreakAcknowledged
from events.codec import decode_acknowledgement
from events.service import ServiceCreated
from events.subjects import ACKNOWLEDGED_SUBJECT
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.services.decisions import chain_hash
from tests.helpers import raw_publish, skyctl, stream_last_seq


def forged(name: str, prev: str | None) -> bytes:
    return encode(
        ServiceCreated(
            id=new_event_id(),
            time=utc_now(),
            actor="mallory@h",
            prev=prev,
            service=Service(name=name),
        )
    )


async def test_an_acknowledged_break_passes_verify_and_another_fails_it(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await registry.create(Service(name="web"))
    # Straight to the stream, linking to nothing that is there: one break, nothing else.
    bad = await raw_publish(url, "skyflow.svc.default.ghost", forged("ghost", chain_hash(b"x")))
    failing = skyctl("audit", "verify", url=url)
    assert failing.code == 1 and f"BROKEN seq {bad.seq} " in failing.out

    # Only a break can be acknowledged, with a reason.
    before = await stream_last_seq(url)
    for args, wanted in (
        (("1", "--reason", "fine"), "finds no break there"),
        (("999", "--reason", "fine"), "the log ends at"),
        ((str(bad.seq),), "--reason"),
        (("0", "--reason", "x"), "1 or more"),
    ):
        refused = skyctl("audit", "acknowledge", *args, url=url)
        assert refused.code == 2 and wanted in refused.err, (args, refused.err)
        assert len(refused.err.splitlines()) == 1
    assert await stream_last_seq(url) == before

    done = skyctl("audit", "acknowledge", str(bad.seq), "--reason", "INC-42: a test", url=url)
    assert done.code == 0, done.err
    assert done.out == f"break at seq {bad.seq} acknowledged (seq {before + 1})\n"
    again = skyctl("audit", "acknowledge", str(bad.seq), "--reason", "twice", url=url)
    assert again.code == 0 and "already acknowledged by" in again.out
    assert await stream_last_seq(url) == before + 1
    async with await Registry.connect(url) as registry:
        stored = await registry.log.last(ACKNOWLEDGED_SUBJECT)
    assert stored is not None
    event = decode_acknowledgement(stored.data)
    assert isinstance(event, BreakAcknowledged)
    assert (event.seq, event.reason, event.version) == (bad.seq, "INC-42: a test", 1)

    passing = skyctl("audit", "verify", url=url)
    assert passing.code == 0, passing.out + passing.err
    assert passing.lines[0].startswith(f"ACKNOWLEDGED seq {bad.seq} skyflow.svc.default.ghost: ")
    assert passing.lines[0].endswith(": INC-42: a test)")
    assert passing.lines[-1].endswith("every other link holds (1 acknowledged break)")

    # A second bad publish fails the check again; the first stays acknowledged.
    second = await raw_publish(url, "skyflow.svc.default.other", forged("other", chain_hash(b"y")))
    failing = skyctl("audit", "verify", url=url)
    assert failing.code == 1
    assert f"BROKEN seq {second.seq} " in failing.out
    assert f"ACKNOWLEDGED seq {bad.seq} " in failing.out
    assert failing.err.strip().endswith("1 break, 1 acknowledged")


async def test_verify_since_checks_from_a_sequence_and_says_so(fresh_server: NatsServer) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await registry.create(Service(name="web", ports=()))
        await registry.create(Service(name="db"))
    bad = await raw_publish(url, "skyflow.svc.default.ghost", forged("ghost", chain_hash(b"x")))
    async with await Registry.connect(url) as registry:
        await registry.delete("default", "db")
        middle = await registry.log.last_sequence() + 1
        await registry.apply(Service(name="web", labels={"tier": "front"}))

    # From after the bad publish: the links met first (into earlier messages) hold.
    later = skyctl("audit", "verify", "--since", str(middle), url=url)
    assert later.code == 0, later.out + later.err
    assert later.out.startswith(f"checked from seq {middle}: ")
    assert later.out.endswith(": every link holds\n")
    # From the bad publish on: it is found, with the link into the message before it.
    found = skyctl("audit", "verify", "--since", str(bad.seq), url=url)
    assert found.code == 1 and f"BROKEN seq {bad.seq} " in found.out
    whole = skyctl("audit", "verify", url=url)
    assert whole.code == 1
    assert whole.out.count("BROKEN") == found.out.count("BROKEN")

    beyond = skyctl("audit", "verify", "--since", "999", url=url)
    assert beyond.code == 2 and "the log ends at sequence" in beyond.err
    assert skyctl("audit", "verify", "--since", "0", url=url).code == 2
