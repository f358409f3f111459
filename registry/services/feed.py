"""The log as its readers see it: each stored message with its decoded event or the
reason it cannot be read, in stream order, from any starting point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from registry.log.entry import Entry, Skipped, StoredMessage, read_entry
from registry.log.port import Log
from registry.log.reader import CAUGHT_UP, Start

__all__ = ["LogRecord", "read_log"]


@dataclass(frozen=True, slots=True)
class LogRecord:
    message: StoredMessage
    entry: Entry | Skipped

    @property
    def seq(self) -> int:
        return self.message.seq


async def read_log(
    log: Log,
    filter_subject: str,
    start: Start | None = None,
    *,
    follow: bool = False,
    until_seq: int | None = None,
) -> AsyncIterator[LogRecord]:
    """Records matching ``filter_subject`` from ``start``: up to what the log held when
    reading began (or up to ``until_seq``), or on and on with ``follow``."""
    async with log.read([filter_subject], start or Start("all")) as tail:
        while True:
            batch = await tail.next_batch()
            if not batch:
                return
            for item in batch:
                if item is CAUGHT_UP:
                    if not follow:
                        return
                    continue
                assert isinstance(item, StoredMessage)
                if until_seq is not None and item.seq > until_seq:
                    return
                yield LogRecord(item, read_entry(item))
