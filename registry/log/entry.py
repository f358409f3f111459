"""A stored message read as an event of a particular service, or the reason it cannot be.

Reading is strict (invariant 5): bytes that do not decode, and events whose body names
a different service than the subject they were stored under, become ``Skipped`` with
the reason, so every reader can report them and go on without guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from events import (
    ADDRESS_PREFIX,
    RANGES_SUBJECT,
    AddressEvent,
    AddressRangesSet,
    DecodeError,
    Event,
    decode,
    decode_address,
    decode_ranges,
    parse_address_subject,
    parse_subject,
    subject_for,
)
from events.audit import BreakAcknowledged
from events.codec import decode_acknowledgement, decode_quota, decode_status, decode_usage
from events.quota import QuotaUsage, ResourceQuotaSet
from events.status import ServiceStatusSet
from events.subjects import (
    ACKNOWLEDGED_SUBJECT,
    QUOTA_PREFIX,
    STATUS_PREFIX,
    USAGE_PREFIX,
    status_subject,
)
from registry.log.stored import MSG_ID, StoredMessage

__all__ = [
    "MSG_ID",
    "Entry",
    "RecordEntry",
    "Skipped",
    "StoredMessage",
    "read_any",
    "read_entry",
]


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded event with its place in the log, and the bytes it was decoded from (and
    the headers stored with them: a signature, for one)."""

    seq: int
    subject: str
    event: Event
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    time_ns: int = 0  # when the server stored it (0: not known)


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """A decoded record of a subject other than a service's (an address, the ranges, a
    quota, a status report, an acknowledged break), with its place in the log."""

    seq: int
    subject: str
    event: (
        AddressEvent
        | AddressRangesSet
        | ResourceQuotaSet
        | QuotaUsage
        | ServiceStatusSet
        | BreakAcknowledged
    )
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message no reader may apply, and why."""

    seq: int
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"skipped seq {self.seq} on {self.subject}: {self.reason}"


def read_entry(message: StoredMessage) -> Entry | Skipped:
    try:
        event = decode(message.data)
    except DecodeError as exc:
        return Skipped(message.seq, message.subject, str(exc))
    if message.subject == subject_for(event.namespace, event.name):
        return Entry(
            message.seq, message.subject, event, message.data, message.headers, message.time_ns
        )
    try:
        namespace, name = parse_subject(message.subject)
    except ValueError as exc:
        return Skipped(message.seq, message.subject, str(exc))
    return Skipped(
        message.seq,
        message.subject,
        f"{event.type} names {event.namespace}/{event.name}, "
        f"but was stored under {namespace}/{name}",
    )


def read_any(message: StoredMessage) -> Entry | RecordEntry | Skipped:
    """Whatever the stream holds, read by the family of its subject: service events,
    address records, the ranges, quotas. For readers of the whole log (``audit verify``)."""
    subject = message.subject
    if subject.startswith(ADDRESS_PREFIX + "."):
        try:
            held = decode_address(message.data)
            kind, address = parse_address_subject(subject)
        except (DecodeError, ValueError) as exc:
            return Skipped(message.seq, subject, str(exc))
        if (held.kind, held.address) != (kind, address):
            return Skipped(
                message.seq, subject, f"{held.type} for {held.address} stored under {subject}"
            )
        return RecordEntry(message.seq, subject, held, message.data, message.headers)
    if subject == RANGES_SUBJECT:
        try:
            ranges = decode_ranges(message.data)
        except DecodeError as exc:
            return Skipped(message.seq, subject, str(exc))
        return RecordEntry(message.seq, subject, ranges, message.data, message.headers)
    if subject == ACKNOWLEDGED_SUBJECT:
        try:
            acknowledged = decode_acknowledgement(message.data)
        except DecodeError as exc:
            return Skipped(message.seq, subject, str(exc))
        return RecordEntry(message.seq, subject, acknowledged, message.data, message.headers)
    if subject.startswith(STATUS_PREFIX + "."):
        try:
            status = decode_status(message.data)
        except DecodeError as exc:
            return Skipped(message.seq, subject, str(exc))
        if subject != status_subject(status.namespace, status.name):
            return Skipped(
                message.seq,
                subject,
                f"the status of {status.namespace}/{status.name} stored under {subject}",
            )
        return RecordEntry(message.seq, subject, status, message.data, message.headers)
    for prefix, decoder in ((QUOTA_PREFIX, decode_quota), (USAGE_PREFIX, decode_usage)):
        if subject.startswith(prefix + "."):
            try:
                quota = decoder(message.data)
            except DecodeError as exc:
                return Skipped(message.seq, subject, str(exc))
            if subject != f"{prefix}.{quota.namespace}":
                return Skipped(
                    message.seq, subject, f"{quota.type} of {quota.namespace} under {subject}"
                )
            return RecordEntry(message.seq, subject, quota, message.data, message.headers)
    return read_entry(message)
