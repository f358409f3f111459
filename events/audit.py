"""An admin's record that a break ``audit verify`` reports was investigated, on a subject
of its own: ``skyflow.config.acknowledged`` (the config subjects are the admins' alone:
no other role of ``nats-server-auth.conf`` may publish there).

The log cannot be mended (the stream denies deletes and purges), so one bad publish
would fail every later ``audit verify``: a scheduled check would cry wolf forever, or be
turned off. An acknowledgement names the break's stream sequence and why it is accepted;
``audit verify`` then reports that break as acknowledged (with who, when and why) instead
of failing on it, and still fails on any other. Acknowledgements form a hash chain of
their own, checked by the same walk, so one cannot be removed or rewritten unseen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.envelope import EventEnvelope

__all__ = ["MAX_REASON", "BreakAcknowledged"]

# A reason is a sentence or a ticket reference, not a report.
MAX_REASON = 1024


class BreakAcknowledged(EventEnvelope):
    """An admin investigated the break ``audit verify`` reports at stream sequence
    ``seq`` and accepts it, for ``reason``."""

    type: Literal["BreakAcknowledged"] = "BreakAcknowledged"
    version: Literal[1] = 1
    seq: int = Field(ge=1, strict=True)
    reason: str = Field(min_length=1, max_length=MAX_REASON)
