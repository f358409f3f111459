"""The fold: current state as a function of the log, and nothing else.

``apply`` is the whole meaning of every event. It is deterministic and does no I/O;
for speed it updates the state it is given in place (copying a 100k-entry map per
event would make replaying a million events quadratic), and ``fold`` wraps it into a
function of the log alone.

A ``ServiceCreated`` carries the whole service and a ``ServiceDeleted`` removes it, so
a service's state depends only on the last event of its subject. That is what lets
``get`` read one message instead of the history and still equal the fold of the log
(tested as a property).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from events import Event, Service, ServiceCreated
from registry.entry import Entry

__all__ = ["Change", "Projection", "ServiceKey", "ServiceRecord", "fold"]

ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A live service and where it came from."""

    service: Service
    created: datetime
    seq: int  # stream sequence of the event that created it: its resource version
    event_id: str
    actor: str

    @property
    def key(self) -> ServiceKey:
        return (self.service.namespace, self.service.name)

    @classmethod
    def from_created(cls, seq: int, event: ServiceCreated) -> ServiceRecord:
        return cls(event.service, event.time, seq, event.id, event.actor)


@dataclass(frozen=True, slots=True)
class Change:
    """What an event did to the visible state, in ``kubectl get -w`` terms."""

    kind: Literal["ADDED", "MODIFIED", "DELETED"]
    seq: int
    record: ServiceRecord
    event: Event


@dataclass
class Projection:
    """Live services, and the last stream sequence folded into them."""

    services: dict[ServiceKey, ServiceRecord] = field(default_factory=dict)
    last_seq: int = 0

    def apply(self, entry: Entry) -> Change | None:
        """Fold one event in; returns what changed, or None if nothing visible did."""
        if entry.seq <= self.last_seq:
            return None  # already folded: a replay or an overlapping read
        self.last_seq = entry.seq
        event = entry.event
        key = (event.namespace, event.name)
        if isinstance(event, ServiceCreated):
            record = ServiceRecord.from_created(entry.seq, event)
            before = self.services.get(key)
            self.services[key] = record
            # Our writers never create over a live service; an event written around
            # them still wins, since the log is the truth.
            return Change("MODIFIED" if before else "ADDED", entry.seq, record, event)
        removed = self.services.pop(key, None)
        if removed is None:
            return None
        return Change("DELETED", entry.seq, removed, event)

    def select(self, namespace: str | None = None) -> list[ServiceRecord]:
        """Live services in one namespace (or all), ordered by namespace then name."""
        records = (r for k, r in self.services.items() if namespace is None or k[0] == namespace)
        return sorted(records, key=lambda r: r.key)


def fold(entries: Iterable[Entry], state: Projection | None = None) -> Projection:
    """The state after ``entries``, starting from a copy of ``state`` (or empty)."""
    result = Projection(dict(state.services), state.last_seq) if state else Projection()
    for entry in entries:
        result.apply(entry)
    return result
