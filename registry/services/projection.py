"""The fold: current state as a function of the log, and nothing else.

``apply`` is the whole meaning of every event; it is deterministic and does no I/O. It
matches each event type by name, and ``assert_never`` makes a new type fail type checking
until it is given a meaning here. For speed it updates the state it is given in place
(copying a 100k-entry map per event would make a million-event replay quadratic), and
``fold`` wraps it into a function of the log alone.

A ``ServiceCreated`` carries the whole service and a ``ServiceDeleted`` removes it, so a
service's state depends only on the last readable event of its subject. That is what lets
``get`` read one message instead of the history and still equal the fold of the log
(tested as a property).

A live service is kept as the bytes of the event that made it (``ServiceRecord``), and
decoded again only when someone looks at it: a registry of 100k services would otherwise
hold a quarter of a gigabyte of models nobody reads. With its name and its share of the
map (``ServiceMap``: one map of names per namespace, no key tuple), a live service costs
about 0.58 KB of a rebuilt projection, 0.65 KB when its event links to the one before
(``python -m benchmarks.memory``).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, TypeVar, assert_never, overload

from events import (
    Event,
    LiveEvent,
    Origin,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatus,
    ServiceStatusChanged,
    ServiceUpdated,
    decode,
    subject_for,
)
from registry.log.entry import Entry
from registry.log.stored import SIGNATURE, SIGNER

if TYPE_CHECKING:
    from events.status import ServiceStatusSet

__all__ = [
    "Change",
    "Projection",
    "ServiceKey",
    "ServiceMap",
    "ServiceRecord",
    "fold",
    "is_live",
    "service_after",
]

ServiceKey = tuple[str, str]  # (namespace, name)
_T = TypeVar("_T")


def service_after(event: Event) -> Service | None:
    """The service as it stands after ``event`` (None: there is none): what every reader
    that does not fold asks of an event."""
    match event:
        case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
            return event.service
        case ServiceDeleted() | ServiceForceDeleted():
            return None
        case _:
            assert_never(event)


def is_live(event: Event) -> bool:
    return service_after(event) is not None


_PLACE = struct.Struct("<QQ")  # a record's sequence and server time, before its bytes
_UNSIGNED: Mapping[str, str] = MappingProxyType({})


def _proof_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """Of the headers stored with an event, those a reader looks at again: the signer's
    (``registry.services.proof``); None if there are none. The rest (the message id, the
    write condition, a batch's) did their work when the event was written."""
    if headers is None:  # (not ``not headers``: that would parse a wire client's block)
        return None
    kept = {name: headers[name] for name in (SIGNER, SIGNATURE) if name in headers}
    return kept or None


class _Rare:
    """What few records carry: a signature's headers, a controller's status report, and
    where a reader found the event's place in its chain. Kept apart so that the common
    record (unsigned, in a long-lived projection) pays one pointer for all three."""

    __slots__ = ("headers", "previous", "status")

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        status: ServiceStatusSet | None = None,
        previous: tuple[int, str | None] | None = None,
    ) -> None:
        self.headers = headers
        self.status = status
        self.previous = previous

    def copy(self) -> _Rare:
        return _Rare(self.headers, self.status, self.previous)


class ServiceRecord:
    """A live service and where it came from: the sequence and bytes of its last event (a
    create or an update: either carries the whole service and where it began).

    The event is decoded on first use and kept; records held in a projection are made
    without it, so they stay small until someone reads them. For the same reason a record
    holds its sequence, server time and bytes as one ``bytes`` (two ints, a second object
    and their slots would cost 64 B more a service) and, of its headers, only a
    signature's: a projection of 100k services is mostly these records
    (``python -m benchmarks.memory``).
    """

    __slots__ = ("_event", "_rare", "_stored")

    def __init__(
        self,
        seq: int,
        data: bytes,
        event: LiveEvent | None = None,
        headers: Mapping[str, str] | None = None,
        status: ServiceStatusSet | None = None,
        time_ns: int = 0,
    ) -> None:
        # seq: the stream sequence of its event, the resource version; time_ns: when the
        # server stored it (0: not known).
        self._stored = _PLACE.pack(seq, time_ns) + data
        self._event = event
        kept = _proof_headers(headers)
        self._rare = _Rare(kept, status) if kept is not None or status is not None else None

    @classmethod
    def from_event(
        cls,
        seq: int,
        event: LiveEvent,
        data: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> ServiceRecord:
        return cls(seq, data, event, headers)

    def _with(self, event: LiveEvent | None, rare: _Rare | None) -> ServiceRecord:
        """A record of the same stored event (no packing again)."""
        record = object.__new__(ServiceRecord)
        record._stored = self._stored
        record._event = event
        record._rare = rare
        return record

    @property
    def seq(self) -> int:
        """The stream sequence of its event: the resource version."""
        return int(_PLACE.unpack_from(self._stored)[0])

    @property
    def time_ns(self) -> int:
        """When the server stored its event, ns since the epoch (0: not known)."""
        return int(_PLACE.unpack_from(self._stored)[1])

    @property
    def data(self) -> bytes:
        """The event's bytes, as stored."""
        return self._stored[_PLACE.size :]

    @property
    def headers(self) -> Mapping[str, str]:
        """Its signer's headers as stored, if it was signed (the only ones kept)."""
        rare = self._rare
        return _UNSIGNED if rare is None or rare.headers is None else rare.headers

    @property
    def previous(self) -> tuple[int, str | None] | None:
        """The sequence and chain hash of the message before its event on its subject
        ((0, None): none), once a reader has looked (``registry.services.proof``)."""
        return None if self._rare is None else self._rare.previous

    @previous.setter
    def previous(self, value: tuple[int, str | None] | None) -> None:
        if self._rare is None:
            self._rare = _Rare()
        self._rare.previous = value

    @property
    def event(self) -> LiveEvent:
        if self._event is None:
            event = decode(self.data)  # it was readable when folded in: it still is
            assert isinstance(event, ServiceCreated | ServiceUpdated | ServiceStatusChanged)
            self._event = event
        return self._event

    @property
    def service(self) -> Service:
        return self.event.service

    @property
    def origin(self) -> Origin:
        """The create that began it: its id is the uid, its time the creation time."""
        event = self.event
        match event:
            case ServiceCreated():
                return Origin(id=event.id, time=event.time, actor=event.actor)
            case ServiceUpdated() | ServiceStatusChanged():
                return event.created
            case _:
                assert_never(event)

    @property
    def status(self) -> ServiceStatus | None:
        """What a controller last reported (a load balancer's address) on the service's
        status subject, when the reader attached it (``registry.services.status``); None:
        nothing reported, or not read. A status inside the service's own events is
        history only: its writers wrote those."""
        report = self.status_report
        return report.status if report is not None else None

    @property
    def status_report(self) -> ServiceStatusSet | None:
        """The report ``status`` comes from: who wrote it and when."""
        return None if self._rare is None else self._rare.status

    def with_status(self, report: ServiceStatusSet | None) -> ServiceRecord:
        """This record with a controller's status report attached."""
        rare = _Rare() if self._rare is None else self._rare.copy()
        rare.status = report
        return self._with(self._event, rare)

    @property
    def created(self) -> datetime:
        return self.origin.time

    @property
    def event_id(self) -> str:
        """The service's uid: the id of the event that created it (kept by updates)."""
        return self.origin.id

    @property
    def actor(self) -> str:
        """Who created it."""
        return self.origin.actor

    @property
    def last_actor(self) -> str:
        """Who wrote its last event (the creator, or whoever changed it last)."""
        return self.event.actor

    @property
    def key(self) -> ServiceKey:
        return (self.service.namespace, self.service.name)

    @property
    def subject(self) -> str:
        return subject_for(*self.key)

    def copy(self) -> ServiceRecord:
        return self._with(self._event, None if self._rare is None else self._rare.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServiceRecord):
            return NotImplemented
        # The sequence and the bytes: the server time is not known to every maker.
        place = _PLACE.size
        return self.seq == other.seq and self._stored[place:] == other._stored[place:]

    def __hash__(self) -> int:
        return hash((self.seq, self.data))

    def __repr__(self) -> str:
        return f"ServiceRecord(seq={self.seq}, {len(self.data)} bytes)"


class ServiceMap(MutableMapping[ServiceKey, ServiceRecord]):
    """Live services by ``(namespace, name)``, held as one map of names per namespace.

    A map keyed by the pairs would hold a tuple (56 B) a service beside its name; here a
    service costs its name and its slot in its namespace's map, and each namespace is one
    string however many services it has (the first seen, interned: every decoded event
    brings a new one). The pairs are made when asked for (iteration, ``items``).
    """

    __slots__ = ("_count", "_spaces")

    def __init__(self, items: Mapping[ServiceKey, ServiceRecord] | None = None) -> None:
        self._spaces: dict[str, dict[str, ServiceRecord]] = {}
        self._count = 0
        if items is not None:
            self.update(items)

    def put(self, namespace: str, name: str, record: ServiceRecord) -> ServiceRecord | None:
        """Set one service; returns the record it replaced (None: it was not there)."""
        names = self._spaces.get(namespace)
        if names is None:
            names = self._spaces[sys.intern(namespace)] = {}
        before = names.get(name)
        if before is None:
            self._count += 1
        names[name] = record
        return before

    @overload
    def get(self, key: ServiceKey, /) -> ServiceRecord | None: ...
    @overload
    def get(self, key: ServiceKey, default: ServiceRecord | _T, /) -> ServiceRecord | _T: ...
    def get(self, key: ServiceKey, default: object = None, /) -> object:
        names = self._spaces.get(key[0])
        return default if names is None else names.get(key[1], default)

    def __getitem__(self, key: ServiceKey) -> ServiceRecord:
        names = self._spaces.get(key[0])
        if names is None or key[1] not in names:
            raise KeyError(key)
        return names[key[1]]

    def __setitem__(self, key: ServiceKey, record: ServiceRecord) -> None:
        self.put(key[0], key[1], record)

    def __delitem__(self, key: ServiceKey) -> None:
        names = self._spaces.get(key[0])
        if names is None or key[1] not in names:
            raise KeyError(key)
        del names[key[1]]
        self._count -= 1
        if not names:
            del self._spaces[key[0]]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        names = self._spaces.get(key[0])
        return names is not None and key[1] in names

    def __iter__(self) -> Iterator[ServiceKey]:
        for namespace, names in self._spaces.items():
            for name in names:
                yield (namespace, name)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"ServiceMap({dict(self.items())!r})"


@dataclass(frozen=True, slots=True)
class Change:
    """What an event did to the visible state, in ``kubectl get -w`` terms."""

    kind: Literal["ADDED", "MODIFIED", "DELETED"]
    seq: int
    record: ServiceRecord
    event: Event


@dataclass
class Projection:
    """Live services, and the last stream sequence folded into them.

    ``keep_events`` keeps each live service's decoded event beside its bytes: for a
    projection read once and thrown away (a listing), which would otherwise decode every
    service twice. Long-lived projections (a rebuild, a watch) keep bytes only.
    """

    services: ServiceMap = field(default_factory=ServiceMap)
    last_seq: int = 0
    keep_events: bool = False

    def apply(self, entry: Entry, *, changes: bool = True) -> Change | None:
        """Fold one event in; returns what changed, or None if nothing visible did (or
        ``changes`` is off: a rebuild has nobody to tell, and a million events to fold)."""
        if entry.seq <= self.last_seq:
            return None  # already folded: a replay or an overlapping read
        self.last_seq = entry.seq
        event = entry.event
        match event:
            case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
                kept = event if self.keep_events else None
                held = ServiceRecord(
                    entry.seq, entry.data, kept, entry.headers, time_ns=entry.time_ns
                )
                before = self.services.put(event.service.namespace, event.service.name, held)
                if not changes:
                    return None
                # Our writers never create over a live service; an event written around
                # them still wins, since the log is the truth.
                record = held.copy()
                record._event = event
                return Change("MODIFIED" if before else "ADDED", entry.seq, record, event)
            case ServiceDeleted() | ServiceForceDeleted():
                removed = self.services.pop((event.namespace, event.name), None)
                if removed is None or not changes:
                    return None
                return Change("DELETED", entry.seq, removed, event)
            case _:
                assert_never(event)

    def select(self, namespace: str | None = None) -> list[ServiceRecord]:
        """Live services in one namespace (or all), ordered by namespace then name.

        Copies of the records: what a reader decodes is kept by the copy, so a
        projection that lives on does not fill up with decoded models.
        """
        keys = sorted(k for k in self.services if namespace is None or k[0] == namespace)
        return [self.services[k].copy() for k in keys]


def fold(entries: Iterable[Entry], state: Projection | None = None) -> Projection:
    """The state after ``entries``, starting from a copy of ``state`` (or empty)."""
    result = Projection(ServiceMap(state.services), state.last_seq) if state else Projection()
    for entry in entries:
        result.apply(entry)
    return result
