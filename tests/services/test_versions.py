"""Versioned events: a next version can ship without breaking old logs, and unknown
versions are skipped and reported by every reader, never guessed at. (ServiceCreated is at
version 5 since named ports; these tests ship a version 6 the way a release would.)"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgpack
import pytest

from events import Service, ServiceCreated, codec, encode, new_event_id, subject_for, utc_now
from registry.client import Registry
from registry.errors import UnreadableHistory
from registry.jetstream.server import NatsServer
from registry.log.entry import Skipped
from registry.services.projector import rebuild
from registry.services.watch import Snapshot
from tests.helpers import raw_publish


class ServiceCreatedV2(ServiceCreated):
    """What shipping the next version looks like: a new field, and an upcaster to it."""

    version: Literal[6] = 6  # type: ignore[assignment]
    reason: str | None = None  # why the service was created (a ticket, say)


def upcast_created_v5_to_v6(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "reason": None}


@pytest.fixture
def v2_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next release of this code: ServiceCreated is at version 6 (v1 is upcast to v2,
    v3, v4 and v5 by today's code, then to v6)."""
    monkeypatch.setitem(codec.MODELS, "ServiceCreated", ServiceCreatedV2)
    monkeypatch.setitem(codec.CURRENT_VERSIONS, "ServiceCreated", 6)
    monkeypatch.setitem(codec.UPCASTERS, ("ServiceCreated", 5), upcast_created_v5_to_v6)


async def test_a_log_of_v1_and_v2_events_folds(fresh_server: NatsServer, v2_codec: None) -> None:
    async with await Registry.connect(fresh_server.url) as registry:
        old = await registry.create(Service(name="old"))  # version 5, as today's code writes
        raw = msgpack.unpackb(
            encode(ServiceCreated(id="x", time=utc_now(), actor="a", service=Service(name="old")))
        )
        assert raw["version"] == 5
        newer = ServiceCreatedV2(
            id=new_event_id(),
            time=utc_now(),
            actor="ops@h",
            service=Service(name="new"),
            reason="TICKET-7",
        )
        seq = await registry.log.append(
            subject_for("default", "new"),
            encode(newer),
            msg_id=newer.id,
            expected_last_subject_seq=0,
        )
        assert msgpack.unpackb(encode(newer))["version"] == 6

        skipped: list[Skipped] = []
        state = (await rebuild(registry.log, "skyflow.svc.*.*", skipped.append)).projection
        assert skipped == []
        assert sorted(state.services) == [("default", "new"), ("default", "old")]
        for key, reason in [(("default", "old"), None), (("default", "new"), "TICKET-7")]:
            record = state.services[key]
            assert isinstance(record.service, Service)
            entry = await registry.current(*key)
            assert isinstance(entry.entry.event, ServiceCreatedV2)  # type: ignore[union-attr]
            assert entry.entry.event.reason == reason  # type: ignore[union-attr]
        assert state.services[("default", "old")].seq == old.seq
        assert state.services[("default", "new")].seq == seq
        # And the code at v2 keeps writing and deleting over v1 history.
        await registry.delete("default", "old")
        assert [r.service.name for r in await registry.list()] == ["new"]


async def test_a_future_version_is_skipped_and_reported_by_every_reader(
    fresh_server: NatsServer,
) -> None:
    reports: list[Skipped] = []
    async with await Registry.connect(fresh_server.url, on_skipped=reports.append) as registry:
        first = await registry.create(Service(name="web", cluster="eu"))
        future = msgpack.unpackb(
            encode(
                ServiceCreated(
                    id=new_event_id(), time=utc_now(), actor="a@h", service=Service(name="web")
                )
            )
        )
        future.update(version=9, shiny="new field")
        ack = await raw_publish(fresh_server.url, "skyflow.svc.default.web", msgpack.packb(future))

        def reported_once() -> None:
            assert [(s.seq, "version 9 is newer" in s.reason) for s in reports] == [(ack.seq, True)]
            reports.clear()

        # Readers keep the state the last readable event gave, and say what they skipped.
        assert (await registry.get("default", "web")).seq == first.seq
        reported_once()
        assert [r.seq for r in await registry.list()] == [first.seq]
        reported_once()
        rebuilt = await rebuild(registry.log, "skyflow.svc.*.*", reports.append)
        assert [r.seq for r in rebuilt.projection.select()] == [first.seq]
        reported_once()
        stream = registry.watch()
        snapshot = await asyncio.wait_for(anext(stream), 10)
        assert isinstance(snapshot, Snapshot) and [r.seq for r in snapshot.records] == [first.seq]
        await stream.aclose()  # type: ignore[attr-defined]
        reported_once()
        history = await registry.history("default", "web")
        assert [h.problem is not None for h in history] == [False, True]
        assert history[1].service is not None and history[1].service.cluster == "eu"
        async with registry.subscribe(start="beginning") as sub:
            iterator = aiter(sub)
            assert (await asyncio.wait_for(anext(iterator), 5)).seq == first.seq
            await registry.create(Service(name="after"))
            assert (await asyncio.wait_for(anext(iterator), 5)).event.name == "after"
        reported_once()
        # A writer does not guess over what it cannot read.
        with pytest.raises(UnreadableHistory, match=rf"last event \(seq {ack.seq}\)"):
            await registry.delete("default", "web")
        with pytest.raises(UnreadableHistory):
            await registry.create(Service(name="web"))


def test_a_version_1_create_reads_as_a_service_without_labels() -> None:
    """Logs written before labels (ServiceCreated v1) read on, upcast by the codec."""
    from events import decode

    v1: dict[str, object] = {
        "id": "e1",
        "time": "2026-11-25T01:25:50.658597Z",
        "actor": "alice@host",
        "prev": None,
        "type": "ServiceCreated",
        "version": 1,
        "service": {
            "namespace": "default",
            "name": "old",
            "type": "ClusterIP",
            "selector": {"app": "old"},
            "ports": [],
            "cluster": None,
        },
    }
    event = decode(msgpack.packb(v1))
    assert isinstance(event, ServiceCreated) and event.version == 5
    assert event.service.labels == {} and event.service.selector == {"app": "old"}
