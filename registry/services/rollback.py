"""``rollback``: restore a service's definition as it was at one of its revisions.

A revision is the stream sequence of one of the service's events (``history``'s SEQ).
Rolling back writes a ``ServiceUpdated`` carrying that revision's definition (type,
selector, ports, cluster, labels, external name) through the ordinary write path, on top
of the revision the history was read at: if anyone wrote in between, the server refuses
the write and nothing is restored over a change the caller has not seen. The service's
addresses stay as they are (an old definition does not ask for the addresses it held
then; the allocator gives what a changed type needs, as an apply would), and so does its
status (a controller's, on a subject of its own, bound to the service's uid, which a
rollback keeps).

The choice of revision is pure (``plan_rollback``), so every refusal is testable without
a server.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import HEADLESS, Service, ServiceCreated, ServiceDeleted, ServiceForceDeleted
from registry.errors import InvalidInput, ServiceError
from registry.services.diff import same_definition
from registry.services.history import HistoryItem

__all__ = ["RollbackPlan", "plan_rollback", "without_addresses"]


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What to restore: ``service`` (the definition of revision ``target``, its addresses
    left open), decided on the service as it is at revision ``current``; ``unchanged``
    when that definition is the live one already (nothing to write)."""

    target: int
    service: Service
    current: int
    unchanged: bool


def without_addresses(service: Service) -> Service:
    """The definition alone: no cluster IP (headless stays headless: that is asked for,
    not allocated) and no node ports, for the write to keep or allocate them."""
    cluster_ip = HEADLESS if service.cluster_ip == HEADLESS else None
    ports = tuple(p.model_copy(update={"node_port": None}) for p in service.ports)
    return service.model_copy(update={"cluster_ip": cluster_ip, "ports": ports})


def _uid(item: HistoryItem) -> str | None:
    """The id of the create event the service after ``item`` began with."""
    event = item.event
    if isinstance(event, ServiceCreated):
        return event.id
    if event is None or isinstance(event, ServiceDeleted | ServiceForceDeleted):
        return None
    return event.created.id


def plan_rollback(
    items: list[HistoryItem], namespace: str, name: str, to_revision: int | None
) -> RollbackPlan:
    """The revision to restore, from the service's whole history (oldest first): the one
    asked for, else the last one whose definition differs from the live one."""
    last = items[-1]
    live = last.service
    if live is None or last.event is None:
        if last.event is None:
            problem = f"its last event (seq {last.seq}) cannot be read: {last.problem}"
        else:
            problem = f"it was deleted (seq {last.seq}); create it again to restore it"
        raise ServiceError(
            f'service "{name}" in namespace "{namespace}" cannot be rolled back: {problem}',
            namespace,
            name,
        )
    uid = _uid(last)
    # The items of the live service's own life (a service deleted and created again
    # under the same name is another service, with another uid).
    life = [item for item in items if item.event is not None and _uid(item) == uid]
    if to_revision is None:
        for item in reversed(life):
            assert item.service is not None  # an event of a live service's life
            if not same_definition(item.service, live):
                return RollbackPlan(item.seq, without_addresses(item.service), last.seq, False)
        raise ServiceError(
            f'service "{name}" in namespace "{namespace}" has no earlier definition to roll '
            "back to (see skyctl history service "
            f"{name}{'' if namespace == 'default' else ' -n ' + namespace})",
            namespace,
            name,
        )
    target = next((item for item in items if item.seq == to_revision), None)
    if target is None:
        raise InvalidInput(
            "--to-revision",
            to_revision,
            f"not a revision of service {name} in namespace {namespace} (its revisions are "
            f"the SEQ column of skyctl history service {name} -n {namespace})",
        )
    if target.event is None:
        raise InvalidInput(
            "--to-revision", to_revision, f"that event cannot be read here: {target.problem}"
        )
    if target.service is None:
        raise InvalidInput(
            "--to-revision", to_revision, "that revision deleted the service: nothing to restore"
        )
    if all(item is not target for item in life):
        raise InvalidInput(
            "--to-revision",
            to_revision,
            "that revision is of an earlier service of the same name, deleted since",
        )
    unchanged = target.seq == last.seq or same_definition(target.service, live)
    return RollbackPlan(target.seq, without_addresses(target.service), last.seq, unchanged)
