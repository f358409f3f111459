"""Service status as controllers report it, on subjects of their own.

A load balancer's external address is written by a controller (``Registry.set_status``)
as a ``ServiceStatusSet`` on ``skyflow.status.<namespace>.<name>``, a subject only the
controller role may publish on; the service's own writers may not. Readers attach it to
a live service only while it names that service's uid, and only to a LoadBalancer, so a
report outlives neither the service nor its type. Each report is conditional on the
status subject's last sequence, so two controllers cannot overwrite each other unseen.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from events import ServiceStatus, ServiceType, encode, new_event_id, utc_now
from events.codec import DecodeError, decode_status
from events.status import ServiceStatusSet
from events.subjects import status_filter, status_subject
from registry.errors import Conflict, InvalidInput, Stale
from registry.log.port import Log, WrongLastSequence
from registry.log.reader import Reader, Start, read_until_caught_up
from registry.log.stored import StoredMessage, chain_hash
from registry.services.projection import ServiceRecord

__all__ = [
    "StatusFeed",
    "attach_statuses",
    "follow_statuses",
    "report_status",
    "status_for",
]

_ATTEMPTS = 5


def status_for(record: ServiceRecord, message: StoredMessage | None) -> ServiceStatusSet | None:
    """The report ``message`` (a status subject's last) makes about ``record``, if it is
    about this very service (same name and uid, a LoadBalancer)."""
    if message is None or record.service.type != ServiceType.LOAD_BALANCER:
        return None
    with contextlib.suppress(DecodeError):
        report = decode_status(message.data)
        if (report.namespace, report.name, report.uid) == (*record.key, record.event_id):
            return report
    return None


async def attach_statuses(log: Log, records: Sequence[ServiceRecord]) -> list[ServiceRecord]:
    """``records`` with the status controllers reported for each LoadBalancer among them
    (one batched direct get)."""
    wanted = [r for r in records if r.service.type == ServiceType.LOAD_BALANCER]
    if not wanted:
        return list(records)
    lasts = await log.last_many([status_subject(*r.key) for r in wanted])
    return [
        r.with_status(status_for(r, lasts.get(status_subject(*r.key))))
        if r.service.type == ServiceType.LOAD_BALANCER
        else r
        for r in records
    ]


async def report_status(
    log: Log,
    record: ServiceRecord,
    status: ServiceStatus,
    actor: str,
    *,
    expected_revision: int | None,
) -> ServiceRecord:
    """Write ``status`` for the live service ``record`` (read just before), refusing a
    report about another revision than ``expected_revision`` (``Stale``) or a load
    balancer address for a service that is not one; the record with its status. The same
    status already reported by the same user is not written again."""
    namespace, name = record.key
    if expected_revision is not None and record.seq != expected_revision:
        raise Stale(namespace, name, expected_revision, record.seq)
    if status.load_balancer.ingress and record.service.type != ServiceType.LOAD_BALANCER:
        raise InvalidInput(
            "status.loadBalancer",
            f"{namespace}/{name}",
            f"a {record.service.type.value} service has no load balancer",
        )
    subject = status_subject(namespace, name)
    for _ in range(_ATTEMPTS):
        last = await log.last(subject)
        before = status_for(record, last)
        if before is not None and (before.status, before.actor) == (status, actor):
            return record.with_status(before)  # already said, by this reporter
        report = ServiceStatusSet(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(last.data) if last is not None else None,
            namespace=namespace,
            name=name,
            uid=record.event_id,
            revision=record.seq,
            status=status,
        )
        try:
            await log.append(
                subject,
                encode(report),
                msg_id=report.id,
                expected_last_subject_seq=last.seq if last is not None else 0,
            )
        except WrongLastSequence:
            continue
        return record.with_status(report)
    raise Conflict(namespace, name)


class StatusFeed:
    """The status reports of a scope as they are now (``latest``, by subject), then each
    new one as it is appended (iterate)."""

    def __init__(self, tail: Reader, first: list[StoredMessage]) -> None:
        self._tail = tail
        self.latest: dict[str, StoredMessage] = {m.subject: m for m in first}

    def attach(self, record: ServiceRecord) -> ServiceRecord:
        """``record`` with the status last reported for it."""
        return record.with_status(status_for(record, self.latest.get(status_subject(*record.key))))

    async def __aiter__(self) -> AsyncIterator[StoredMessage]:
        while True:
            batch = await self._tail.next_batch()
            if not batch:
                return
            for item in batch:
                if isinstance(item, StoredMessage):
                    self.latest[item.subject] = item
                    yield item


@contextlib.asynccontextmanager
async def follow_statuses(
    log: Log, namespace: str | None = None, name: str | None = None
) -> AsyncIterator[StatusFeed]:
    """Every status report in scope, then each new one (``StatusFeed``): for readers that
    follow services some other way (the endpoints follower) and show their status."""
    async with log.read([status_filter(namespace, name)], Start("last_per_subject")) as tail:
        yield StatusFeed(tail, await read_until_caught_up(tail))
