"""One service's subject as readers and writers see it now: its last message and the last
event this code can read. The read side of ``registry.services.writer``, apart from it so
a read (``get NAME``) loads nothing a write needs (the allocator, quotas, batches).
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from events import subject_for
from registry.log.entry import Entry, read_entry
from registry.log.port import Log
from registry.log.stored import StoredMessage
from registry.services.decisions import Current
from registry.services.projector import SkipHandler, last_readable

__all__ = ["Read", "read_current"]


class Read(TypedDict, total=False):
    """How the state is read: ``last``, the subject's last message when the caller fetched
    it already (bulk; None: it has none), else a direct get waiting out a silent server
    for up to ``retry_for`` seconds (10)."""

    last: StoredMessage | None
    retry_for: float


async def read_current(
    log: Log,
    namespace: str,
    name: str,
    on_skipped: SkipHandler,
    **read: Unpack[Read],
) -> Current:
    """The subject's last message and last readable event: one direct get, usually."""
    subject = subject_for(namespace, name)
    if "last" in read:
        message = read["last"]
    else:
        message = await log.last(subject, retry_for=read.get("retry_for", 10.0))
    if message is None:
        return Current(None, None)
    entry = read_entry(message)
    if isinstance(entry, Entry):
        return Current(message, entry)
    on_skipped(entry)
    return Current(message, await last_readable(log, subject, lambda _: None))
