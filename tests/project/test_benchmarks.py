"""The benchmark command runs end to end (at a tiny scale; the figures are not checked)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import Result, Run, percentile


def run_benchmark(
    module: str, *args: str, out: Path, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """``python -m <module> ARGS --json OUT``, exiting 0; what it printed, and its rows."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, list(json.loads(out.read_text())["results"])


def test_report_reads_each_kind_of_target() -> None:
    assert Result("t", 110, 100, "ms", "time", 1.25).met
    assert not Result("r", 70, 100, "events/s", "rate", 0.8).met
    assert Result("d", 2.5, 1.6, "ms", "delta", 1.0).compared == 2.5 - 1.6
    assert Result("m", 600, None, "B/service", "absolute", 1024).met
    assert Result("i", 1.0, 0.5, "ms", "delta", None).met is None
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    run = Run("cmd", "today", 1.0, {}, {}, [Result("t", 110, 100, "ms", "time", 1.25)])
    assert "| t " in run.table() and "ratio <= 1.25" in run.table()


def test_benchmark_command_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc, results = run_benchmark(
        "benchmarks",
        *("--scale", "0.0002", "--runs", "1", "--repeat", "1", "--watch-events", "5"),
        *("--dns-seconds", "0.3", "--kills", "2", "--heartbeat-seconds", "1"),
        *("--heartbeat-ttl", "3"),
        out=out,
        timeout=240,
    )
    # 29 rows on the seeded server (the floor row, three apply rows, three DNS rows and ten
    # discovery rows among them), and create, get and delete in three more connection modes.
    assert len(results) == 46
    assert any("(3-node cluster, 3 URLs)" in r["scenario"] for r in results)
    assert any("(tls:// with a CA, user/password)" in r["scenario"] for r in results)
    assert any("(user/password)" in r["scenario"] for r in results)
    assert json.loads(out.read_text())["imports_ms"]
    # A few idle seconds of a process may cost no clock tick of CPU at this size.
    assert all(r["ours"] > 0 for r in results if r["unit"] != "% CPU")
    assert "| bulk create of 20 services" in proc.stdout
    assert "| `skyctl dns`: A for a service with 10 endpoints" in proc.stdout
    assert "| DNS p99 for a victim namespace with and without a 1,000-endpoint" in proc.stdout
    assert "| failure detection p99: SIGKILLed `skyctl announce` (TTL 2 s)" in proc.stdout
    assert "| heartbeats held: 10 tasks at TTL 3 s" in proc.stdout
    assert "| `skyctl get endpoints NAME` among 10 live tasks" in proc.stdout


def test_health_check_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    proc, results = run_benchmark(
        "benchmarks.checks",
        *("--tasks", "5", "--seconds", "1", "--interval", "0.2"),
        out=tmp_path / "checks.json",
    )
    assert len(results) == 4
    assert "| CPU per HTTP check, announcer with 5 checked tasks (all its CPU)" in proc.stdout
    # Every check ran and passed (the figures themselves are not checked).
    assert "0 failing" in results[0]["note"], results[0]["note"]


def test_ui_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    """``python -m benchmarks.ui`` end to end at a tiny scale: Chromium, the watch, and
    the SSE clients all see every change (the figures are not checked)."""
    pytest.importorskip("playwright")
    if shutil.which("chromium") is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    proc, results = run_benchmark(
        "benchmarks.ui",
        *("--services", "40", "--runs", "1", "--changes", "3", "--clients", "5"),
        *("--fan-rounds", "1", "--window", "0.3", "--settle", "0.3"),
        out=tmp_path / "ui.json",
    )
    assert [r["samples"] for r in results] == [1, 3, 3, 3, 3, 1]
    assert "| first page of 40 services in Chromium" in proc.stdout
    assert "| change -> browser DOM p99" in proc.stdout
    # Every change reached the one client and the five (each window's count is of them).
    assert results[5]["ours"] > 0 and results[5]["baseline"] > 0
