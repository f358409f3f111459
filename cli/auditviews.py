"""``audit verify``'s result: the walk of the log, each finding as the command prints it,
and its summary; the one implementation behind both ``skyctl audit verify`` and the web
UI's audit pages (``/audit``, a service's ``/audit``), so they cannot disagree.

The walk itself is the library's (``registry.services.audit.verify``); this module only
labels what it finds (BROKEN, ACKNOWLEDGED, UNPROVEN) and words the summary, lines that
scripts read, so the CLI's output stays what it always was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cli.terminal import safe
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.client import Registry
    from registry.services.proof import Trust

__all__ = ["ACTOR_STATUSES", "Audit", "Finding", "audit"]

# The actors' line: these three always, then any of the others that occurred.
ACTOR_STATUSES = ("verified", "signed", "unproven")
_BAD_STATUSES = ("replayed", "expired", "forged")


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``audit verify``: BROKEN, ACKNOWLEDGED (a break an admin accepted) or
    UNPROVEN (an actor nothing trusted vouches for); ``text`` is terminal-safe."""

    label: str
    seq: int
    text: str

    def __str__(self) -> str:
        return f"{self.label} {self.text}"


@dataclass
class Audit:
    """What a walk found, and ``audit verify``'s closing lines about it."""

    described: str  # the checker's ``6 events in 5 chains (...)``
    since: int | None = None
    trusted: bool = False
    findings: list[Finding] = field(default_factory=list)
    proofs: Counter[str] = field(default_factory=Counter)
    events: int = 0  # how many the walk checked

    def count(self, label: str) -> int:
        return sum(1 for f in self.findings if f.label == label)

    @property
    def breaks(self) -> int:
        return self.count("BROKEN")

    @property
    def unproven(self) -> int:
        return self.count("UNPROVEN")

    @property
    def acknowledged(self) -> int:
        return self.count("ACKNOWLEDGED")

    @property
    def holds(self) -> bool:
        """Exit 0: no break but acknowledged ones, and (with a trust file) every actor
        verified."""
        return not self.breaks and not self.unproven

    @property
    def first_break(self) -> Finding | None:
        return next((f for f in self.findings if f.label == "BROKEN"), None)

    @property
    def actors(self) -> str | None:
        """``actors: 3 verified, 0 signed, 1 unproven, 1 forged``: when signing is in use
        (or a trust file was given), else None."""
        proofs = self.proofs
        if not (self.trusted or proofs["signed"] or proofs["verified"]):
            return None
        counts = [f"{proofs[s]} {s}" for s in ACTOR_STATUSES]
        counts += [f"{proofs[s]} {s}" for s in _BAD_STATUSES if proofs[s]]
        return f"actors: {', '.join(counts)}"

    @property
    def verdict(self) -> str:
        """The last line: what was checked, and whether every link holds."""
        start = f"from seq {self.since}: " if self.since is not None else ""
        summary = f"checked {start}{self.described}"
        breaks, unproven, acknowledged = self.breaks, self.unproven, self.acknowledged
        if breaks or unproven:
            problems = [f"{breaks} break{'s' if breaks != 1 else ''}"] if breaks else []
            if unproven:
                problems.append(f"{unproven} unverified actor{'s' if unproven != 1 else ''}")
            if acknowledged:
                problems.append(f"{acknowledged} acknowledged")
            return f"{summary}: {', '.join(problems)}"
        if acknowledged:
            plural = "s" if acknowledged != 1 else ""
            return f"{summary}: every other link holds ({acknowledged} acknowledged break{plural})"
        return f"{summary}: every link holds"


async def audit(
    registry: Registry,
    trust: Trust | None = None,
    *,
    since: int | None = None,
    subject: str | None = None,
    found: Callable[[Finding], None] | None = None,
) -> Audit:
    """Walk the log (from ``since``; or one ``subject``'s chain alone), handing each
    finding to ``found`` as it is met (the CLI prints it at once), and return them all
    with the summary. ``InvalidInput`` if ``since`` is past the log's end."""
    from registry.services.audit import Break, ChainChecker, read_acknowledgements
    from registry.services.audit import verify as walk

    if since is not None:
        last = await registry.log.last_sequence()
        if since > last:
            raise InvalidInput("--since", since, f"the log ends at sequence {last}")
    checker = ChainChecker()
    result = Audit("", since, trust is not None)
    known = await read_acknowledgements(registry.log)
    async for each in walk(
        registry.log, checker, trust, result.proofs, since=since, subject=subject
    ):
        if isinstance(each, Break) and each.seq in known:
            text = f"{safe(str(each))} ({safe(str(known[each.seq]))})"
            finding = Finding("ACKNOWLEDGED", each.seq, text)
        else:
            label = "BROKEN" if isinstance(each, Break) else "UNPROVEN"
            finding = Finding(label, each.seq, safe(str(each)))
        result.findings.append(finding)
        if found is not None:
            found(finding)
    result.described = checker.describe()
    result.events = checker.checked
    return result
