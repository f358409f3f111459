"""The write side's decisions, with no server."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from events import Service, ServiceCreated, ServiceDeleted, encode
from registry.errors import AlreadyExists, NotFound
from registry.log.entry import Entry, StoredMessage
from registry.services.decisions import Current, chain_hash, decide_create, decide_delete

T0 = datetime(2026, 11, 25, tzinfo=UTC)
WEB = Service(name="web")


def current_of(event: ServiceCreated | ServiceDeleted | None, seq: int = 7) -> Current:
    if event is None:
        return Current(None, None)
    message = StoredMessage(seq, "skyflow.svc.default.web", encode(event))
    return Current(message, Entry(seq, message.subject, event, message.data))


def test_create_on_a_fresh_subject_expects_nothing_there() -> None:
    current = current_of(None)
    event = decide_create(WEB, current, event_id="e1", time=T0, actor="me@h")
    assert event.service == WEB and event.prev is None
    assert current.expected_seq == 0


def test_create_over_a_live_service_is_refused() -> None:
    live = ServiceCreated(id="e0", time=T0, actor="x@h", service=WEB)
    with pytest.raises(AlreadyExists, match='service "web" already exists in namespace "default"'):
        decide_create(WEB, current_of(live), event_id="e1", time=T0, actor="me@h")


def test_create_after_delete_links_to_the_delete() -> None:
    gone = ServiceDeleted(id="e0", time=T0, actor="x@h", namespace="default", name="web")
    current = current_of(gone, seq=9)
    event = decide_create(WEB, current, event_id="e1", time=T0, actor="me@h")
    assert event.prev == hashlib.sha256(encode(gone)).hexdigest() == chain_hash(encode(gone))
    assert current.expected_seq == 9


def test_delete_needs_a_live_service() -> None:
    with pytest.raises(NotFound, match='service "web" not found in namespace "default"'):
        decide_delete("default", "web", current_of(None), event_id="e1", time=T0, actor="me")
    live = ServiceCreated(id="e0", time=T0, actor="x@h", service=WEB)
    event = decide_delete("default", "web", current_of(live), event_id="e1", time=T0, actor="me")
    assert (event.namespace, event.name, event.prev) == ("default", "web", chain_hash(encode(live)))
