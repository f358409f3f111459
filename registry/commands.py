"""The decisions: given what a service's subject holds now, which event to append.

Pure functions that return events (or refuse), so every rule of the write side can
be tested without a server. The server then enforces the same decision atomically:
the event is appended only if the subject's last sequence is still the one the
decision was based on (``Nats-Expected-Last-Subject-Sequence``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events import Overridden, Service, ServiceCreated, ServiceDeleted, ServiceForceDeleted
from registry.entry import Entry, Skipped, StoredMessage, read_entry
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.projection import Projection, ServiceRecord, is_live
from registry.stored import chain_hash

__all__ = ["Current", "chain_hash", "decide_create", "decide_delete", "decide_force_delete"]


@dataclass(frozen=True, slots=True)
class Current:
    """What a service's subject holds at the moment of deciding."""

    last: StoredMessage | None  # the subject's last message, whatever it is
    entry: Entry | None  # its last event this code can read (usually the same one)

    @property
    def expected_seq(self) -> int:
        """The subject sequence the write must find still in place (0: never written)."""
        return self.last.seq if self.last else 0

    @property
    def prev(self) -> str | None:
        return chain_hash(self.last.data) if self.last else None

    @property
    def readable(self) -> bool:
        """Whether its last message is an event this code can read (or there is none)."""
        return self.last is None or (self.entry is not None and self.entry.seq == self.last.seq)

    @property
    def live(self) -> bool:
        return self.entry is not None and is_live(self.entry.event)

    def record(self) -> ServiceRecord | None:
        """The live service this state holds, as the fold makes it; None if none is."""
        if self.entry is None:
            return None
        projection = Projection()
        projection.apply(self.entry)
        return next(iter(projection.services.values()), None)


def decide_create(
    service: Service, current: Current, *, event_id: str, time: datetime, actor: str
) -> ServiceCreated:
    if current.live:
        raise AlreadyExists(service.namespace, service.name)
    return ServiceCreated(id=event_id, time=time, actor=actor, prev=current.prev, service=service)


def decide_delete(
    namespace: str, name: str, current: Current, *, event_id: str, time: datetime, actor: str
) -> ServiceDeleted:
    if not current.live:
        raise NotFound(namespace, name)
    return ServiceDeleted(
        id=event_id, time=time, actor=actor, prev=current.prev, namespace=namespace, name=name
    )


def decide_force_delete(
    namespace: str, name: str, current: Current, *, event_id: str, time: datetime, actor: str
) -> ServiceForceDeleted:
    """Remove a service over a last message no one can read; refuse when it is readable
    (then the ordinary delete decides, and may say the service is not there)."""
    if current.readable or current.last is None:
        raise InvalidInput(
            "--force",
            f"{namespace}/{name}",
            "its last event is readable: delete it without --force",
        )
    problem = read_entry(current.last)
    reason = problem.reason if isinstance(problem, Skipped) else "unreadable"
    return ServiceForceDeleted(
        id=event_id,
        time=time,
        actor=actor,
        prev=current.prev,
        namespace=namespace,
        name=name,
        overrides=Overridden(seq=current.last.seq, reason=reason[:1024]),
    )
