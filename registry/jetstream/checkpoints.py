"""Where durable subscriptions keep their place: a JetStream key-value bucket.

A bucket is a stream (``KV_<bucket>``, subjects ``$KV.<bucket>.<key>``), so a checkpoint
is read with a direct get of its key's subject and written with a conditional append, by
the same code as the log, over either client. Each save is a compare-and-set on the key's
revision (its last sequence), so two processes running one subscription find out instead
of silently interleaving. The values are JSON, as the nats tools show them.

A subscriber's checkpoints live under its own key prefix, ``<user>.<subscription>``, so
the server's permissions can let each user read and write only its own
(``nats-server-auth.conf``); an unauthenticated subscriber is ``anonymous``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Any

from events.stamps import new_event_id
from registry.errors import (
    CheckpointConflict,
    PermissionDenied,
    ServerError,
    StreamMisconfigured,
)
from registry.jetstream.session import Session
from registry.log.port import Checkpoint, WrongLastSequence

__all__ = ["ANONYMOUS", "BUCKET", "STREAM", "CheckpointStore", "owner_token"]

BUCKET = "SKYFLOW_SUBSCRIPTIONS"
STREAM = f"KV_{BUCKET}"
_KEY_PREFIX = f"$KV.{BUCKET}."
_DELETED = frozenset({"DEL", "PURGE"})
ANONYMOUS = "anonymous"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def owner_token(user: str) -> str:
    """A user as one subject token: the name itself when it is one (as the permissions in
    nats-server-auth.conf name them), else a digest of it."""
    if _TOKEN.fullmatch(user):
        return user
    return "u" + hashlib.sha256(user.encode()).hexdigest()[:32]


# What keeps one subscriber from erasing or expiring everyone's checkpoints: no roll-ups
# (a ``Nats-Rollup: all`` publish would purge the bucket), no purges, no TTLs.
BUCKET_SAFETY: dict[str, Any] = {"allow_rollup_hdrs": False, "deny_purge": True}


def bucket_config(replicas: int) -> dict[str, Any]:
    """The bucket's stream: nats-py's ``create_key_value(history=1)``, less what would let
    a writer erase others' checkpoints (roll-ups, purges) or make one expire (TTLs)."""
    return {
        "name": STREAM,
        "description": "SkyFlow registry: last sequence each durable subscriber acked",
        "subjects": [f"{_KEY_PREFIX}>"],
        "retention": "limits",
        "storage": "file",
        "discard": "new",
        "num_replicas": replicas,
        "max_msgs_per_subject": 1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msg_size": -1,
        "max_consumers": -1,
        **BUCKET_SAFETY,
        "deny_delete": True,
        "allow_direct": True,
        "duplicate_window": 120_000_000_000,
    }


class CheckpointStore:
    """``registry.log.port.Checkpoints`` in the bucket."""

    def __init__(self, session: Session, owner: str = ANONYMOUS) -> None:
        self._session = session
        self.owner = owner_token(owner)

    @classmethod
    async def open(cls, session: Session, replicas: int, owner: str = ANONYMOUS) -> CheckpointStore:
        """The bucket, created (with ``replicas``, the log's) if it is missing, and refused
        if one writer could erase or expire the others' checkpoints."""
        config, _ = await session.ensure_stream(
            STREAM,
            bucket_config(replicas),
            "create the durable subscriptions bucket (an admin must, once)",
        )
        loose = [key for key, want in BUCKET_SAFETY.items() if bool(config.get(key)) != want]
        if config.get("allow_msg_ttl"):
            loose.append("allow_msg_ttl")
        if loose:
            raise StreamMisconfigured(
                STREAM,
                [
                    f"{', '.join(loose)}: one subscriber could erase or expire every "
                    "subscriber's checkpoint (skyctl init tightens the bucket; one with "
                    "allow_msg_ttl must be recreated)"
                ],
            )
        return cls(session, owner)

    def _key(self, name: str) -> str:
        return f"{_KEY_PREFIX}{self.owner}.{name}"

    async def load(self, name: str) -> Checkpoint | None:
        message = await self._session.last(STREAM, self._key(name))
        legacy = False
        if message is None:
            # Before checkpoints had owners, they were kept under the bare name; the first
            # save moves one to the owner's key (and a user may not read others' at all).
            with contextlib.suppress(PermissionDenied):
                message = await self._session.last(STREAM, f"{_KEY_PREFIX}{name}")
                legacy = True
        if message is None or message.headers.get("KV-Operation") in _DELETED:
            return None
        try:
            data = json.loads(message.data)
            seq, filter_subject = data["seq"], data["filter"]
            if type(seq) is not int or seq < 0 or not isinstance(filter_subject, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ServerError(
                f"subscription {name!r}: its checkpoint is unreadable ({type(exc).__name__}); "
                "it was not written by this registry"
            ) from None
        return Checkpoint(seq, filter_subject, 0 if legacy else message.seq)

    async def save(
        self, name: str, seq: int, filter_subject: str, revision: int, *, retry_for: float = 10.0
    ) -> int:
        """Store ``seq`` over ``revision`` (0: none yet); returns the new revision.

        Retried while the server is away with one message id, so a save whose reply was
        lost is recognised as ours rather than reported as a second writer.
        """
        value = json.dumps({"seq": seq, "filter": filter_subject}).encode()
        try:
            return await self._session.append(
                STREAM,
                self._key(name),
                value,
                msg_id=new_event_id(),
                expected_last_subject_seq=revision,
                retry_for=retry_for,
            )
        except WrongLastSequence:
            stored = await self.load(name)
            if stored is not None and (stored.seq, stored.filter_subject) == (seq, filter_subject):
                return stored.revision
            raise CheckpointConflict(name) from None
