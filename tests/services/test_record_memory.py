"""What a rebuilt projection keeps of each live service: its event's bytes, sequence and
server time, and a signer's two headers, never the whole header block the server stored
(that block and the map parsed from it once cost more than half of a live service).
The signed services must still prove who wrote them after the rebuild."""

from __future__ import annotations

import base64
import gc
import json
from collections.abc import Mapping
from pathlib import Path

from events import (
    SUBJECTS,
    Service,
    ServiceCreated,
    ServiceDeleted,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from registry.client import Registry
from registry.jetstream import open_log
from registry.log.entry import Entry
from registry.log.stored import MSG_ID
from registry.services.projection import Projection, ServiceRecord
from registry.services.projector import rebuild
from registry.services.proof import SIGNATURE, SIGNER, Signer, Trust, record_proof
from tests.creds import operator_setup


def reachable(record: ServiceRecord) -> list[object]:
    """Every object the record holds, directly or through what it holds (types aside)."""
    seen: dict[int, object] = {}
    todo: list[object] = [record]
    while todo:
        for held in gc.get_referents(todo.pop()):
            if not isinstance(held, type) and id(held) not in seen:
                seen[id(held)] = held
                todo.append(held)
    return list(seen.values())


def assert_keeps_only_what_readers_use(record: ServiceRecord, signed: bool) -> None:
    held = reachable(record)
    # One bytes object: the event's bytes with their sequence and server time before them.
    blobs = [b for b in held if isinstance(b, bytes)]
    assert len(blobs) == 1 and blobs[0].endswith(record.data), blobs
    assert len(blobs[0]) <= len(record.data) + 16
    maps = [m for m in held if isinstance(m, Mapping)]
    if signed:
        assert len(maps) == 1 and set(maps[0]) == {SIGNER, SIGNATURE}
    else:
        assert maps == []
        assert all(not isinstance(h, str) for h in held)  # no header value either


def signer_and_trust(tmp_path: Path) -> tuple[Signer, Trust]:
    _, creds = operator_setup(tmp_path, "carol")
    signer = Signer.from_creds(creds)
    issuer = json.loads(base64.urlsafe_b64decode(signer.jwt.split(".")[1] + "=="))["iss"]
    return signer, Trust(frozenset({issuer}))


def test_a_record_keeps_only_a_signers_headers() -> None:
    service = Service(namespace="a", name="x")
    event = ServiceCreated(id="e1", time=utc_now(), actor="a@h", service=service)
    stored = {
        MSG_ID: "e1",
        "Nats-Expected-Last-Subject-Sequence": "0",
        "Nats-Batch-Id": "b" * 22,
        SIGNER: "jwt",
        SIGNATURE: "sig",
    }
    entry = Entry(7, subject_for("a", "x"), event, encode(event), stored, 123)
    projection = Projection()
    projection.apply(entry, changes=False)
    record = projection.services[("a", "x")]
    assert_keeps_only_what_readers_use(record, signed=True)
    assert dict(record.headers) == {SIGNER: "jwt", SIGNATURE: "sig"}
    assert (record.seq, record.time_ns, record.data) == (7, 123, entry.data)
    assert record.event == event


def test_a_record_read_by_a_reader_keeps_what_it_was_given() -> None:
    service = Service(namespace="a", name="x")
    event = ServiceCreated(id="e1", time=utc_now(), actor="a@h", service=service)
    record = ServiceRecord(5, encode(event), time_ns=9)
    copied = record.copy()
    copied.previous = (3, "hash")
    assert record.previous is None  # a reader's copy is its own
    assert (copied.seq, copied.time_ns, copied.previous) == (5, 9, (3, "hash"))
    assert copied == record and hash(copied) == hash(record)
    assert record.with_status(None).previous is None
    assert copied.with_status(None).previous == (3, "hash")


async def test_a_rebuilt_projection_keeps_no_header_block_and_signatures_still_verify(
    url: str, ns: str, tmp_path: Path
) -> None:
    signer, trust = signer_and_trust(tmp_path)
    async with await Registry.connect(url, actor="a@h") as registry:
        await registry.create(Service(namespace=ns, name="plain"))
    async with await open_log(url, long_lived=False) as log:
        subject = subject_for(ns, "signed")
        event = ServiceCreated(
            id=new_event_id(), time=utc_now(), actor=signer.actor,
            service=Service(namespace=ns, name="signed"),
        )  # fmt: skip
        data = encode(event)
        await log.append(
            subject,
            data,
            msg_id=event.id,
            expected_last_subject_seq=0,
            headers=signer.headers(subject, data),
        )
        projection = (await rebuild(log, SUBJECTS)).projection
    held = projection.services[(ns, "plain")], projection.services[(ns, "signed")]
    assert_keeps_only_what_readers_use(held[0], signed=False)
    assert_keeps_only_what_readers_use(held[1], signed=True)
    # Readers read copies (``select``), as every command does.
    plain, signed = projection.select(ns)
    assert plain.time_ns > 0 and signed.time_ns >= plain.time_ns  # the server's stamps
    assert record_proof(plain, trust).status == "unproven"
    assert record_proof(signed, trust).status == "verified"
    assert record_proof(signed, None).status == "signed"
    assert_keeps_only_what_readers_use(held[1], signed=True)  # what a reader decoded


def test_a_projection_holds_one_namespace_string_and_no_key_pair_per_service() -> None:
    """Each decoded event brings its own namespace string; the projection keeps one of
    them per namespace, and each service's name once, with no ``(namespace, name)``
    tuple beside it: what a live service costs beside its event (``benchmarks.memory``)."""
    projection = Projection()
    names = [f"svc-{i}" for i in range(50)]
    for seq, name in enumerate(names, start=1):
        namespace = "".join(["team-", "a"])  # a new, equal string each time, as decoded
        service = Service(namespace=namespace, name=name)
        event = ServiceCreated(id=f"e{seq}", time=utc_now(), actor="a@h", service=service)
        entry = Entry(seq, subject_for(namespace, name), event, encode(event), time_ns=seq)
        projection.apply(entry, changes=seq % 2 == 0)
    keys = list(projection.services)
    assert sorted(keys) == sorted(("team-a", name) for name in names)
    assert len({id(namespace) for namespace, _ in keys}) == 1
    # Below the map: one string per namespace, one per service (its name), the records.
    held: list[object] = []
    todo: list[object] = [projection.services]
    while todo:
        holder = todo.pop()  # (a dict of str keys does not show its keys to gc)
        below = [*holder, *holder.values()] if isinstance(holder, dict) else None
        for found in gc.get_referents(holder) if below is None else below:
            if isinstance(found, ServiceRecord):
                held.append(found)
            elif not isinstance(found, type):
                held.append(found)
                todo.append(found)
    assert not [h for h in held if isinstance(h, tuple)]
    assert sorted(h for h in held if isinstance(h, str)) == sorted(["team-a", *names])
    assert sum(isinstance(h, ServiceRecord) for h in held) == len(names)
    # Deleting the last service of a namespace drops the namespace's map too.
    for seq, name in enumerate(names, start=len(names) + 1):
        gone = ServiceDeleted(
            id=f"e{seq}", time=utc_now(), actor="a@h", namespace="team-a", name=name
        )
        projection.apply(Entry(seq, subject_for("team-a", name), gone, encode(gone)))
    assert len(projection.services) == 0 and list(projection.services) == []
    assert not [m for m in gc.get_referents(projection.services) if isinstance(m, dict) and m]
