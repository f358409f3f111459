"""The compact fold reaches the state of the fold, and reports the same messages.

Without a server: random logs of creates, deletes, garbage, events under the wrong
subject and valid events in unusual spellings, fed to both projectors. With a server:
``replay`` over the wire equals ``projector.rebuild``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from events import Service, ServiceCreated, ServiceDeleted, encode, subject_for
from registry.client import Registry
from registry.compact import CompactProjector
from registry.entry import Skipped
from registry.jetstream import JetStreamLog
from registry.jetstream.lite import LiteLog
from registry.lite import LiteRegistry
from registry.projector import Projector, rebuild
from registry.replay import replay
from registry.stored import StoredMessage
from registry.views import ServiceView

T0 = datetime(2026, 11, 25, tzinfo=UTC)

steps = st.lists(
    st.tuples(
        st.sampled_from(["create", "delete", "garbage", "stray", "odd", "future"]),
        st.sampled_from(["n1", "n2"]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=40,
)


def message(seq: int, kind: str, namespace: str, name: str) -> StoredMessage:
    subject = subject_for(namespace, name)
    service = Service(namespace=namespace, name=name, selector={"k": str(seq)})
    if kind == "create":
        data = encode(ServiceCreated(id=f"e{seq}", time=T0, actor="a@h", service=service))
    elif kind == "delete":
        data = encode(
            ServiceDeleted(id=f"e{seq}", time=T0, actor="a@h", namespace=namespace, name=name)
        )
    elif kind == "garbage":
        data = b"\xc1" + bytes(seq % 7)
    elif kind == "stray":  # a valid create naming another service than its subject
        other = service.model_copy(update={"name": "zz"})
        data = encode(ServiceCreated(id=f"e{seq}", time=T0, actor="a@h", service=other))
    else:
        raw = msgpack.unpackb(
            encode(ServiceCreated(id=f"e{seq}", time=T0, actor="a@h", service=service))
        )
        if kind == "odd":  # valid, not canonical: only the models read it
            raw["service"]["type"] = "loadbalancer"
        else:  # a version newer than this code
            raw["version"] = 9
        data = msgpack.packb(raw)
    return StoredMessage(seq, subject, data)


def state(views: list[ServiceView]) -> list[tuple[object, ...]]:
    return [(v.key, v.seq, v.event_id, v.service, v.created, v.actor) for v in views]


@given(steps)
def test_compact_projector_equals_projector(history: list[tuple[str, str, str]]) -> None:
    messages = [message(i + 1, *step) for i, step in enumerate(history)]
    full_skipped: list[Skipped] = []
    compact_skipped: list[Skipped] = []
    full = Projector(full_skipped.append)
    compact = CompactProjector(compact_skipped.append)
    full.feed(messages)
    compact.feed(messages)
    compact.feed(messages[: len(messages) // 2])  # seen already: no effect
    assert full.position == compact.position
    assert full.projection.last_seq == compact.projection.last_seq
    expected = [ServiceView.from_record(r) for r in full.projection.select()]
    assert state(compact.projection.select()) == state(expected)
    assert compact.projection.records() == full.projection.select()
    assert [s.seq for s in compact_skipped] == [s.seq for s in full_skipped]
    assert [s.reason for s in compact_skipped] == [s.reason for s in full_skipped]
    assert {k for k, _ in compact.projection.services.items()} == set(full.projection.services)


async def test_replay_over_the_wire_equals_rebuild(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create_many(Service(namespace=ns, name=f"s{i}") for i in range(300))
        await registry.delete_many((ns, f"s{i}") for i in range(0, 300, 3))
        async with await JetStreamLog.open(url) as log:
            await log.js.publish(subject_for(ns, "s1"), b"\xc1 garbage")
        expected = (await rebuild(registry.log, f"skyflow.svc.{ns}.*")).projection.select()
    skipped: list[Skipped] = []
    async with await LiteLog.open(url) as log:
        compact = await replay(log, f"skyflow.svc.{ns}.*", skipped.append)
    assert compact.records() == expected
    assert [s.subject for s in skipped] == [subject_for(ns, "s1")]
    async with await Registry.connect(url) as registry:  # and through nats-py, the same
        assert (await replay(registry.log, f"skyflow.svc.{ns}.*", lambda _: None)).records() == (
            expected
        )
    async with await LiteRegistry.connect(url) as lite:
        assert state(await lite.list(ns)) == state(compact.select(ns))


async def test_replay_of_an_empty_filter(url: str) -> None:
    await (await JetStreamLog.open(url)).close()  # the stream exists (LiteLog leaves that to it)
    async with await LiteLog.open(url) as log:
        projection = await replay(log, f"skyflow.svc.{uuid.uuid4().hex[:12]}.*")
    assert projection.services == {} and projection.last_seq == 0
