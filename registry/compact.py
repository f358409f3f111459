"""The fold of ``registry.projection``, kept compact: each live service as its event's bytes.

``Projection`` holds a ``ServiceRecord`` of pydantic models per live service, about
2.5 KB each; a registry of 100k services would need a quarter of a gigabyte for its
read model. ``CompactProjection`` holds the same state as the stream sequence and the
msgpack body of each live service's ``ServiceCreated`` (about 0.5 KB), and builds a
``ServiceView`` or a ``ServiceRecord`` only when asked.

``CompactProjector`` feeds it as ``projector.Projector`` feeds ``Projection``: every
message in stream order, each unreadable one skipped and reported once. It reads with
``events.plain`` and hands what that is not certain about to ``registry.entry``'s
strict decoder, so both projectors reach the same state and report the same messages
(a property test holds them to it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from events import plain
from events.subjects import PREFIX
from registry.stored import StoredMessage
from registry.views import ServiceView

if TYPE_CHECKING:
    from events import ServiceCreated
    from registry.projection import ServiceRecord
    from registry.projector import SkipHandler

__all__ = ["CompactProjection", "CompactProjector", "LiveService"]

ServiceKey = tuple[str, str]  # (namespace, name)


class LiveService:
    """A live service as the log holds it: the sequence and body of its ``ServiceCreated``."""

    __slots__ = ("data", "seq")

    def __init__(self, seq: int, data: bytes) -> None:
        self.seq = seq
        self.data = data

    def __repr__(self) -> str:
        return f"LiveService(seq={self.seq}, {len(self.data)} bytes)"

    def view(self) -> ServiceView:
        raw = plain.unpack(self.data)
        if plain.check(raw) == plain.CREATED:
            return ServiceView.from_raw(self.seq, raw)
        return ServiceView.from_event(self.seq, self._event())

    def record(self) -> ServiceRecord:
        from registry.projection import ServiceRecord

        return ServiceRecord.from_created(self.seq, self._event())

    def _event(self) -> ServiceCreated:
        from events import ServiceCreated, decode

        event = decode(self.data)  # it was readable when folded in: it still is
        assert isinstance(event, ServiceCreated)
        return event


class CompactProjection:
    """Live services, and the last stream sequence folded into them."""

    __slots__ = ("last_seq", "services")

    def __init__(self) -> None:
        self.services: dict[ServiceKey, LiveService] = {}
        self.last_seq = 0

    def _keys(self, namespace: str | None) -> list[ServiceKey]:
        return sorted(k for k in self.services if namespace is None or k[0] == namespace)

    def select(self, namespace: str | None = None) -> list[ServiceView]:
        """Live services in one namespace (or all), ordered by namespace then name."""
        return [self.services[k].view() for k in self._keys(namespace)]

    def records(self, namespace: str | None = None) -> list[ServiceRecord]:
        """The same as ``select``, as the pydantic ``ServiceRecord`` of ``Projection``."""
        return [self.services[k].record() for k in self._keys(namespace)]


class CompactProjector:
    """Folds stored messages into a ``CompactProjection``, reporting each unreadable one."""

    def __init__(self, on_skipped: SkipHandler | None = None) -> None:
        if on_skipped is None:
            from registry.projector import report_skipped

            on_skipped = report_skipped
        self.projection = CompactProjection()
        self.on_skipped = on_skipped
        self.position = 0  # last stream sequence seen, readable or not

    def feed(self, messages: Iterable[StoredMessage]) -> None:
        add = self.add
        for message in messages:
            add(message.seq, message.subject, message.data)

    def add(self, seq: int, subject: str, data: bytes) -> None:
        """Fold one message (the hot path of a replay: no objects made for it)."""
        if seq <= self.position:
            return  # already seen: a replay or an overlapping read
        self.position = seq
        raw = plain.unpack(data)
        kind = plain.check(raw)
        if kind is plain.CREATED:
            service = raw["service"]
            namespace, name = service["namespace"], service["name"]
        elif kind is plain.DELETED:
            namespace, name = raw["namespace"], raw["name"]
        else:
            self._add_with_models(seq, subject, data)
            return
        if subject != f"{PREFIX}.{namespace}.{name}":
            self._add_with_models(seq, subject, data)  # it will say why it skips it
            return
        projection = self.projection
        projection.last_seq = seq
        if kind is plain.CREATED:
            projection.services[(sys.intern(namespace), name)] = LiveService(seq, data)
        else:
            projection.services.pop((namespace, name), None)

    def _add_with_models(self, seq: int, subject: str, data: bytes) -> None:
        from events import ServiceCreated
        from registry.entry import Entry, read_entry

        entry = read_entry(StoredMessage(seq, subject, data))
        if not isinstance(entry, Entry):
            self.on_skipped(entry)
            return
        event = entry.event
        projection = self.projection
        projection.last_seq = seq
        key = (sys.intern(event.namespace), event.name)
        if isinstance(event, ServiceCreated):
            projection.services[key] = LiveService(seq, data)
        else:
            projection.services.pop(key, None)
