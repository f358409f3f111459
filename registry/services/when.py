"""Points in the log's past, as people name them: a sequence, a time, or a while ago.

Used by ``get --at`` and ``events --since``. A bare integer is a stream sequence (the
registry's own clock, exact); anything with a date is an RFC 3339 time; ``90m``, ``2d``
or ``1h30m`` is that long before now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from registry.errors import InvalidInput

__all__ = ["AtSequence", "AtTime", "When", "parse_when"]

_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_PART = re.compile(r"(\d+)([wdhms])")
# JetStream's sequences are unsigned 64-bit numbers.
MAX_SEQUENCE = 2**64 - 1
_FORMS = (
    "a stream sequence (1234), an RFC 3339 time (2026-11-25T10:00:00Z) or a duration ago (90m, 2d)"
)


@dataclass(frozen=True, slots=True)
class AtSequence:
    seq: int

    def __str__(self) -> str:
        return f"sequence {self.seq}"


@dataclass(frozen=True, slots=True)
class AtTime:
    time: datetime

    def __str__(self) -> str:
        return self.time.strftime("%Y-%m-%dT%H:%M:%SZ")


When = AtSequence | AtTime


def parse_when(text: str, now: datetime | None = None) -> When:
    value = text.strip()
    if value.isascii() and value.isdigit():  # ("²".isdigit() is True, and int() refuses it)
        # Length first: int() of thousands of digits is slow, and refused past 4,300.
        seq = int(value) if len(value.lstrip("0")) <= 20 else MAX_SEQUENCE + 1
        if not 1 <= seq <= MAX_SEQUENCE:
            raise InvalidInput("time", text, f"stream sequences start at 1, end at {MAX_SEQUENCE}")
        return AtSequence(seq)
    try:
        if _DURATION.fullmatch(value):
            delta = sum((int(n) * _UNITS[u] for n, u in _PART.findall(value)), timedelta())
            return AtTime((now or datetime.now(UTC)) - delta)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise InvalidInput("time", text, "give a UTC offset or Z (e.g. 2026-11-25T10:00:00Z)")
        return AtTime(moment.astimezone(UTC))
    except OverflowError:
        raise InvalidInput("time", text, "it is outside the years 1 to 9999") from None
    except ValueError:
        raise InvalidInput("time", text, f"expected {_FORMS}") from None
