"""Results of a run: each scenario beside its baseline, as a table and as JSON."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Result", "Run", "median", "percentile"]

# How a ratio is read: "time" -> ours / baseline (lower is better), "rate" -> ours /
# baseline (higher is better), "delta" -> ours - baseline, "absolute" -> ours alone.
Kind = Literal["time", "rate", "delta", "absolute"]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: the smallest value with q % at or below."""
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


@dataclass
class Result:
    scenario: str
    ours: float
    baseline: float | None
    unit: str
    kind: Kind
    # Max ratio ("time"), min ratio ("rate"), max delta or value; None: shown, no target.
    limit: float | None
    samples: int = 1
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.kind in ("delta", "absolute"):
            return None
        return self.ours / self.baseline if self.baseline else None

    @property
    def compared(self) -> float:
        """The number the target is about."""
        if self.kind == "delta":
            return self.ours - (self.baseline or 0.0)
        if self.kind == "absolute":
            return self.ours
        return self.ratio or 0.0

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        if self.kind == "rate":
            return self.compared >= self.limit
        return self.compared <= self.limit

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        return {
            "time": f"ratio <= {self.limit:g}",
            "rate": f"ratio >= {self.limit:g}",
            "delta": f"<= +{self.limit:g} {self.unit}",
            "absolute": f"<= {self.limit:g} {self.unit}",
        }[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "compared": self.compared,
            "target": self.target,
            "met": self.met,
        }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("events/s", "services/s", "tasks"):
        return f"{value:,.0f} {unit}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}" if abs(value) < 10 else f"{value:.1f} {unit}"


@dataclass
class Run:
    command: str
    date: str
    scale: float
    machine: dict[str, Any]
    sizes: dict[str, int]
    results: list[Result] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    imports: dict[str, float] = field(default_factory=dict)  # package -> ms of importing it

    @classmethod
    def started(
        cls,
        module: str,
        argv: Sequence[str] | None,
        sizes: dict[str, int],
        *,
        scale: float = 1.0,
    ) -> Run:
        """A run of ``python -m benchmarks.<module>`` with ``argv`` (None: this
        process's), dated now (UTC, to the minute), on this machine."""
        args = list(sys.argv[1:] if argv is None else argv)
        return cls(
            command=" ".join([f"python -m benchmarks.{module}", *args]),
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            scale=scale,
            machine={"cpus": os.cpu_count()},
            sizes=sizes,
        )

    def add(self, result: Result) -> Result:
        self.results.append(result)
        return result

    def table(self) -> str:
        header = ["scenario", "ours", "baseline", "ratio / delta", "target", "met"]
        rows = []
        for r in self.results:
            if r.kind == "delta":
                compared = f"{r.compared:+.2f} {r.unit}"
            elif r.kind == "absolute":
                compared = "-"
            else:
                compared = f"{r.compared:.2f}"
            rows.append(
                [
                    r.scenario,
                    _number(r.ours, r.unit),
                    _number(r.baseline, r.unit),
                    compared,
                    r.target,
                    {True: "yes", False: "NO", None: "-"}[r.met],
                ]
            )
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(header), rule, *(line(row) for row in rows)])

    def imports_table(self) -> str:
        total = sum(self.imports.values())
        rows = [(name, f"{ms:.1f} ms", f"{ms / total:.0%}") for name, ms in self.imports.items()]
        rows.append(("total", f"{total:.1f} ms", "100%"))
        header = ("package", "import time", "share")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(header), rule, *(line(row) for row in rows)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "date": self.date,
            "scale": self.scale,
            "machine": self.machine,
            "sizes": self.sizes,
            "timings_s": self.timings,
            "results": [r.as_dict() for r in self.results],
            "imports_ms": self.imports,
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
