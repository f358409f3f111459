"""Per-namespace quotas (``skyctl create quota``): checked by the allocator at every
write that adds services, node ports or LoadBalancer services to a namespace.

The quota is the last ``ResourceQuotaSet`` on ``skyflow.quota.<namespace>``, a subject
only admins may publish on; none (or one this version cannot read) means unlimited.
What a namespace uses is counted from its live services' own last events at the moment
of writing, never from a counter anyone could forge. So that two writes racing in one
namespace cannot both pass on the same count, each write that adds to a namespace with a
quota also appends a ``QuotaUsage`` on ``skyflow.usage.<namespace>`` in its atomic batch,
conditional on that subject's last sequence read *before* counting: of two racing
writes, the second is refused by the server and decides again on the new count. (Its
content is not trusted: the namespace's own writers may publish there, and forging it
only makes their own writes retry.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from events import Service, ServiceType, encode, filter_for, new_event_id, utc_now
from events.codec import DecodeError, decode_quota
from events.quota import MAX_HARD, QUOTA_RESOURCES, QuotaResource, ResourceQuotaSet
from events.service import NODE_PORT_TYPES
from events.subjects import quota_subject, usage_subject
from registry.addresses.holdings import live_service
from registry.errors import InvalidInput, QuotaExceeded, ServerError
from registry.log.entry import Entry, read_entry
from registry.log.port import Log, WrongLastSequence
from registry.log.reader import Start, read_until_caught_up
from registry.log.stored import StoredMessage, chain_hash

__all__ = [
    "Usage",
    "UsageClaim",
    "check_quotas",
    "parse_hard",
    "read_quota",
    "set_quota",
    "usage_of",
]

_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Usage:
    services: int = 0
    nodeports: int = 0
    loadbalancers: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.services + other.services,
            self.nodeports + other.nodeports,
            self.loadbalancers + other.loadbalancers,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.services - other.services,
            self.nodeports - other.nodeports,
            self.loadbalancers - other.loadbalancers,
        )

    def of(self, resource: QuotaResource) -> int:
        if resource == "services":
            return self.services
        if resource == "services.nodeports":
            return self.nodeports
        return self.loadbalancers


@dataclass(frozen=True, slots=True)
class UsageClaim:
    """What a write adding to a namespace with a quota appends on its usage subject: the
    quota's name, what the namespace uses after the write, and the subject's last
    message when read (the batch is conditional on it)."""

    namespace: str
    quota: str
    used: Usage
    last: StoredMessage | None

    @property
    def expected_seq(self) -> int:
        return self.last.seq if self.last is not None else 0


def usage_of(service: Service | None) -> Usage:
    """What one live service counts against its namespace's quota."""
    if service is None:
        return Usage()
    ports = len(service.ports) if service.type in NODE_PORT_TYPES else 0
    return Usage(1, ports, 1 if service.type == ServiceType.LOAD_BALANCER else 0)


def parse_hard(text: str) -> dict[QuotaResource, int]:
    """``services=10,services.nodeports=4``: Kubernetes ResourceQuota names and counts."""
    hard: dict[QuotaResource, int] = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in QUOTA_RESOURCES:
            raise InvalidInput(
                "--hard",
                part or text,
                f"give NAME=COUNT with NAME one of {', '.join(QUOTA_RESOURCES)}",
            )
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or not 0 <= int(value) <= MAX_HARD:
            raise InvalidInput("--hard", part, f"the count must be a whole number 0-{MAX_HARD}")
        if key in hard:
            raise InvalidInput("--hard", part, f"{key} is given twice")
        hard[key] = int(value)
    return hard


async def read_quota(log: Log, namespace: str) -> ResourceQuotaSet | None:
    """The namespace's quota; None when it has none (or only one this code cannot read:
    admins alone write it, so that is a newer registry's, and reported by audit)."""
    message = await log.last(quota_subject(namespace))
    if message is None:
        return None
    with contextlib.suppress(DecodeError):
        quota = decode_quota(message.data)
        if quota.namespace == namespace:
            return quota
    return None


async def namespace_usage(log: Log, namespace: str) -> Usage:
    """What the namespace's live services use now, from their own last events."""
    async with log.read([filter_for(namespace)], Start("last_per_subject")) as tail:
        messages = await read_until_caught_up(tail)
    total = Usage()
    for message in messages:
        entry = read_entry(message)
        if isinstance(entry, Entry):
            live = live_service(entry.event)
            if live is not None:
                total = total + usage_of(live[1])
    return total


async def check_quotas(
    log: Log, changes: Sequence[tuple[str, str, Service | None, Service | None]]
) -> tuple[dict[int, QuotaExceeded], dict[int, UsageClaim]]:
    """For writes ``(namespace, name, before, after)`` in order: those that would take
    their namespace past its quota, and, for each of the others that adds to a namespace
    with a quota, the usage record its batch appends; both by index. Writes that add
    nothing are never refused (a delete, or an update within what the service had)."""
    growing: dict[str, list[int]] = {}
    for index, (namespace, _, before, after) in enumerate(changes):
        delta = usage_of(after) - usage_of(before)
        if max(delta.services, delta.nodeports, delta.loadbalancers) > 0:
            growing.setdefault(namespace, []).append(index)
    refused: dict[int, QuotaExceeded] = {}
    claims: dict[int, UsageClaim] = {}
    for namespace, indexes in growing.items():
        quota = await read_quota(log, namespace)
        if quota is None or not quota.hard:
            continue
        # Read before counting: a write that changes the count after this read also
        # moves this subject, and the server then refuses ours.
        last = await log.last(usage_subject(namespace))
        used = await namespace_usage(log, namespace)
        for index in indexes:
            _, name, before, after = changes[index]
            delta = usage_of(after) - usage_of(before)
            for resource in QUOTA_RESOURCES:
                hard = quota.hard.get(resource)
                wanted = delta.of(resource)
                if hard is not None and wanted > 0 and used.of(resource) + wanted > hard:
                    refused[index] = QuotaExceeded(
                        namespace, name, quota.name, resource, used.of(resource), hard
                    )
                    break
            else:
                used = used + delta
                claims[index] = UsageClaim(namespace, quota.name, used, last)
    return refused, claims


async def set_quota(
    log: Log, namespace: str, name: str, hard: dict[QuotaResource, int], actor: str
) -> tuple[ResourceQuotaSet, bool]:
    """Record the namespace's quota (replacing the one before); it, and whether it is new
    (False: an existing quota was changed)."""
    subject = quota_subject(namespace)
    for _ in range(_ATTEMPTS):
        last = await log.last(subject)
        quota = ResourceQuotaSet(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(last.data) if last is not None else None,
            namespace=namespace,
            name=name,
            hard=hard,
        )
        try:
            await log.append(
                subject,
                encode(quota),
                msg_id=quota.id,
                expected_last_subject_seq=last.seq if last is not None else 0,
            )
        except WrongLastSequence:
            continue
        return quota, last is None
    raise ServerError(f"the quota of {namespace} kept changing while we wrote it; try again")
