"""A full rebuild at the speed of the wire: every event from the start, into a compact fold.

``projector.rebuild`` decodes each event into pydantic models through nats-py; for a
log of a million events both costs add up (see the README's benchmarks). ``replay``
reads the same messages through ``registry.jetstream.lite`` (one push consumer, its
sequence checked for gaps, flow control answered), folds them with
``CompactProjector`` as they arrive, and stops once it has everything the stream held
when it started. The result equals the fold of the log (``projector.rebuild``), which
tests check.

Given a nats-py ``JetStreamLog`` instead (TLS, NKeys), it reads through ``Tail``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.subjects import SUBJECTS
from registry.compact import CompactProjection, CompactProjector
from registry.jetstream.lite import LiteLog

if TYPE_CHECKING:
    from registry.jetstream import JetStreamLog
    from registry.projector import SkipHandler

__all__ = ["replay"]


async def replay(
    log: LiteLog | JetStreamLog,
    filter_subject: str = SUBJECTS,
    on_skipped: SkipHandler | None = None,
) -> CompactProjection:
    """Fold every event matching ``filter_subject`` from the start of the log."""
    projector = CompactProjector(on_skipped)
    if isinstance(log, LiteLog):
        add = projector.add
        await log.consume_all(
            filter_subject, lambda seq, subject, data, _ns: add(seq, subject, data)
        )
        return projector.projection
    from registry.projector import feed_all

    await feed_all(log, filter_subject, projector.feed)
    return projector.projection
