"""Where a one-shot ``skyctl`` spends its start-up: ``python -X importtime``, by package.

A one-shot command is mostly imports, so this table is the map of what is left to win
(and what cannot be won: asyncio, and pydantic building the event models that read the
log). Self times are summed per top-level package; medians of a few runs.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections import defaultdict

from benchmarks.modes import Mode

__all__ = ["import_times"]

_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s+(\S.*)$")
_STDLIB = set(sys.stdlib_module_names)
_GROUPS = {
    "pydantic_core": "pydantic",
    "typing_extensions": "pydantic",
    "annotated_types": "pydantic",
}


def _group(module: str) -> str:
    top = module.strip().partition(".")[0]
    top = _GROUPS.get(top, top)
    if top in ("asyncio", "ssl", "email", "json", "typing"):
        return top
    if top in _STDLIB or top.startswith("_"):
        return "stdlib (other)"
    if top in ("events", "registry", "cli"):
        return "skyflow (events, registry, cli)"
    if top in ("click", "typer", "shellingham"):
        return "typer/click"
    return top


def import_times(mode: Mode, rounds: int = 5) -> dict[str, float]:
    """Milliseconds per package for ``skyctl get service NAME`` (a name that exists)."""
    env = mode.client_env()
    subprocess.run(
        [sys.executable, "-m", "cli", "create", "svc", "imports", "-n", "bench"],
        env=env,
        capture_output=True,
        check=False,
    )
    runs: list[dict[str, float]] = []
    for _ in range(rounds):
        proc = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "cli",
                "get",
                "svc",
                "imports",
                "-n",
                "bench",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        totals: dict[str, float] = defaultdict(float)
        for line in proc.stderr.splitlines():
            match = _LINE.match(line)
            if match:
                totals[_group(match.group(2))] += int(match.group(1)) / 1000
        runs.append(totals)
    names = {name for totals in runs for name in totals}
    result = {name: statistics.median(t.get(name, 0.0) for t in runs) for name in names}
    return dict(sorted(result.items(), key=lambda item: -item[1]))
