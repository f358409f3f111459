"""Whether a live task takes traffic, from everything that has a say. Pure.

Three things decide, most decisive first:

1. a drain (``skyctl task drain``): the task is leaving; not ready, listed as draining,
   until ``skyctl task ready`` takes it back;
2. an operator (``skyctl task not-ready``, or ``announce --not-ready``): not ready until
   ``skyctl task ready``;
3. its health check: not ready until it passes, and while it fails.

A task is ready when none of them says otherwise. ``reason`` says who said no, in words
a person reads in ``get tasks -o wide`` and the membership history.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.control import ReadinessAction
from events.task import as_reason
from registry.discovery.checks import Result, Threshold

__all__ = ["Readiness", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the task's heartbeat says."""

    ready: bool
    draining: bool = False
    reason: str | None = None


@dataclass
class Readiness:
    """Everything that has a say on one task's readiness."""

    drained: str | None = None  # why it was drained
    held: str | None = None  # why an operator set it not ready
    check: Threshold | None = None
    check_name: str = ""

    @classmethod
    def announced(cls, ready: bool, check: Threshold | None = None, name: str = "") -> Readiness:
        """At announce: ``ready=False`` is ``--not-ready``, held until set ready."""
        return cls(held=None if ready else "announced not ready", check=check, check_name=name)

    def verdict(self) -> Verdict:
        if self.drained is not None:
            return Verdict(False, True, self.drained)
        if self.held is not None:
            return Verdict(False, False, self.held)
        check = self.check
        if check is not None and check.passing is not True:
            return Verdict(False, False, self._check_reason(check))
        return Verdict(True)

    def _check_reason(self, check: Threshold) -> str:
        last = check.last
        if last is None or (check.passing is None and last.passed):
            return as_reason(f"check {self.check_name}: not passed yet")
        return as_reason(f"check {self.check_name} failing: {last.detail}")

    def checked(self, result: Result) -> bool:
        """Take a check's result; whether the task's readiness changed (a failing check
        whose details change while it fails changes nothing: its reason says what it saw
        when it turned)."""
        if self.check is None:
            return False
        before = self.verdict()
        self.check.record(result)
        after = self.verdict()
        return (after.ready, after.draining) != (before.ready, before.draining)

    def request(self, action: ReadinessAction, reason: str | None, by: str | None) -> None:
        """An operator's request (``skyctl task ready|not-ready|drain``)."""
        who = f" by {by}" if by else ""
        why = f": {reason}" if reason else ""
        match action:
            case ReadinessAction.READY:
                self.drained = self.held = None
            case ReadinessAction.NOT_READY:
                self.held = as_reason(f"set not ready{who}{why}")
            case ReadinessAction.DRAIN:
                self.drained = as_reason(f"drained{who}{why}")
