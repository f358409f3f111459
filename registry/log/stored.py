"""One message as the stream holds it: bytes at a sequence, before anyone decodes them.

Kept apart from ``registry.log.entry`` (which decodes) so readers that must start fast can
hold messages without importing the event models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["MSG_ID", "SIGNATURE", "SIGNER", "StoredMessage", "chain_hash"]

MSG_ID = "Nats-Msg-Id"
# The two headers a signing writer stores with an event (``registry.services.proof``):
# the only ones a reader of a service's state ever looks at again.
SIGNER = "Skyflow-Signer"
SIGNATURE = "Skyflow-Signature"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the stream holds it."""

    seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    time_ns: int = 0  # when the server stored it, ns since the epoch

    @property
    def msg_id(self) -> str | None:
        return self.headers.get(MSG_ID)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns / 1e9, UTC)


def chain_hash(data: bytes) -> str:
    """The link an event carries to the one before it on the same service (``prev``)."""
    return hashlib.sha256(data).hexdigest()
