"""Choosing one endpoint per request: round-robin, or the less loaded of two random ones.

Pure, over whatever list of endpoints the caller passes (the Resolver passes the ready
ones of one service port). Power-of-two-choices (Mitzenmacher) needs only a load figure
per endpoint and keeps the busiest endpoint's load close to the average, without the
herd that "always the least loaded" causes when many clients see the same figures.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["RoundRobin", "two_choices"]

T = TypeVar("T")


class RoundRobin:
    """A counter per key (a service port): each call takes the next endpoint in turn."""

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}

    def choose(self, key: Hashable, candidates: Sequence[T]) -> T:
        if not candidates:
            raise IndexError("no candidates")
        turn = self._next.get(key, 0)
        self._next[key] = turn + 1
        return candidates[turn % len(candidates)]


def two_choices(
    candidates: Sequence[T], load: Callable[[T], float], rng: random.Random | None = None
) -> T:
    """The less loaded of two distinct candidates drawn at random (the first on a tie)."""
    if not candidates:
        raise IndexError("no candidates")
    if len(candidates) == 1:
        return candidates[0]
    first, second = (rng or random).sample(range(len(candidates)), 2)
    a, b = candidates[first], candidates[second]
    return b if load(b) < load(a) else a
