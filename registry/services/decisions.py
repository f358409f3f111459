"""The decisions: given what a service's subject holds now, which event to append.

Pure functions that return events (or refuse), so every rule of the write side can
be tested without a server. The server then enforces the same decision atomically:
the event is appended only if the subject's last sequence is still the one the
decision was based on (``Nats-Expected-Last-Subject-Sequence``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events import (
    Overridden,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceUpdated,
)
from events.service import check_new_namespace
from registry.errors import AlreadyExists, InvalidInput, NotFound, Stale
from registry.log.entry import Entry, Skipped, StoredMessage, read_entry
from registry.log.stored import chain_hash
from registry.services.projection import Projection, ServiceRecord, is_live

__all__ = [
    "Applied",
    "Current",
    "Unchanged",
    "applied",
    "chain_hash",
    "decide_apply",
    "decide_create",
    "decide_delete",
    "decide_force_delete",
    "decide_readdress",
    "decide_update",
]


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
    try:
        check_new_namespace(service.namespace)
    except ValueError as exc:
        raise InvalidInput("namespace", service.namespace, str(exc)) from None
    if current.live:
        raise AlreadyExists(service.namespace, service.name)
    return ServiceCreated(id=event_id, time=time, actor=actor, prev=current.prev, service=service)


class Unchanged(Exception):
    """What was asked for is what is live: nothing to write (``apply`` says "unchanged")."""

    def __init__(self, record: ServiceRecord) -> None:
        super().__init__(record.key)
        self.record = record


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply`` did to one service, as kubectl says it."""

    action: Literal["created", "configured", "unchanged"]
    # What is live after it; on a dry run that would write, what would be (revision 0).
    record: ServiceRecord | None
    # What was live before it (None: nothing), so a caller can say what changed.
    before: ServiceRecord | None = None


def applied(event: ServiceCreated | ServiceUpdated) -> Literal["created", "configured"]:
    return "created" if isinstance(event, ServiceCreated) else "configured"


def decide_update(
    service: Service,
    current: Current,
    *,
    expected_revision: int | None,
    event_id: str,
    time: datetime,
    actor: str,
) -> ServiceUpdated:
    """Change a live service in place, on top of ``expected_revision`` if one was read."""
    record = current.record()
    if record is None:
        if expected_revision is not None:
            ever = current.last is not None  # deleted, or never created
            raise Stale(service.namespace, service.name, expected_revision, None, ever=ever)
        raise NotFound(service.namespace, service.name)
    if expected_revision is not None and record.seq != expected_revision:
        raise Stale(service.namespace, service.name, expected_revision, record.seq)
    # What the owner left open keeps what the registry allocated (a manifest without a
    # clusterIP is not asking to lose it). (Imported here: a read loads no address code.)
    from registry.addresses.holdings import carried_over

    service = carried_over(record.service, service)
    if record.service == service:
        raise Unchanged(record)
    return ServiceUpdated(
        id=event_id,
        time=time,
        actor=actor,
        prev=current.prev,
        service=service,
        created=record.origin,
        status=None,  # status is the controller's, on a subject of its own
    )


def decide_readdress(
    namespace: str, name: str, current: Current, *, event_id: str, time: datetime, actor: str
) -> ServiceUpdated:
    """Give a live service the addresses it lacks (one created before addresses existed):
    the service unchanged, for the allocator to fill in. ``Unchanged`` if it lacks none."""
    from registry.addresses.holdings import open_slots

    record = current.record()
    if record is None:
        raise NotFound(namespace, name)
    if not open_slots(record.service):
        raise Unchanged(record)
    return ServiceUpdated(
        id=event_id,
        time=time,
        actor=actor,
        prev=current.prev,
        service=record.service,
        created=record.origin,
        status=None,  # status is the controller's, on a subject of its own
    )


def decide_apply(
    service: Service,
    current: Current,
    *,
    expected_revision: int | None,
    event_id: str,
    time: datetime,
    actor: str,
) -> ServiceCreated | ServiceUpdated:
    """Create what is missing, update what differs, refuse (``Unchanged``) what is equal.
    ``expected_revision`` 0 (a manifest printed of a service not stored yet, as ``create
    --dry-run -o yaml`` prints one) creates only: ``AlreadyExists`` if it is live."""
    if expected_revision == 0 or (not current.live and expected_revision is None):
        return decide_create(service, current, event_id=event_id, time=time, actor=actor)
    return decide_update(
        service,
        current,
        expected_revision=expected_revision,
        event_id=event_id,
        time=time,
        actor=actor,
    )


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
