"""The PROOF column on a registry without signing: ``-`` (nothing is signed, which is no
error), not ``unproven``; a reader who trusts keys (``--trust``) still sees ``unproven``.
Scripts' objects keep the status itself (``createdByProof: unproven``)."""

from __future__ import annotations

import json
from pathlib import Path

from cli.render import proof_cell, signing_in_use
from registry.services.proof import Proof
from tests.helpers import skyctl


def column(lines: list[str], header: str) -> list[str]:
    """A table's column by its header (cells without spaces)."""
    index = lines[0].split().index(header)
    return [line.split()[index] for line in lines[1:]]


def test_proof_cell() -> None:
    unsigned, forged = Proof("unproven", "not signed"), Proof("forged", "half a signature")
    assert proof_cell(unsigned, signing=False) == "-"
    assert proof_cell(unsigned, signing=True) == "unproven"
    assert proof_cell(forged, signing=False) == "forged"  # a failure always shows
    assert proof_cell(None, signing=False) == "?"
    assert not signing_in_use(None, [unsigned, None])
    assert signing_in_use(None, [unsigned, forged])  # someone signs (or tries to)


def test_no_signing_reads_as_no_error(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80", url=url).code == 0
    assert skyctl("label", "svc", "web", "tier=a", "-n", ns, url=url).code == 0
    wide = skyctl("get", "svc", "-n", ns, "-o", "wide", url=url)
    assert column(wide.lines, "PROOF") == ["-"]
    history = skyctl("history", "svc", "web", "-n", ns, url=url)
    assert column(history.lines, "PROOF") == ["-", "-"]
    events = skyctl("events", "-n", ns, url=url)
    assert column(events.lines, "PROOF") == ["-", "-"]
    described = skyctl("describe", "svc", "web", "-n", ns, url=url)
    changed_by = next(line for line in described.lines if line.startswith("Last Changed By:"))
    assert "unproven" not in changed_by and changed_by.split()[-1].count("@") == 1
    # Scripts still read the status itself.
    got = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert got["metadata"]["createdByProof"] == "unproven"
    # A reader who trusts keys expects signatures: unsigned is unproven to them.
    keys = tmp_path / "trusted.keys"
    keys.write_text("# nobody yet\n")
    trusting = ("--trust", str(keys))
    wide = skyctl("get", "svc", "-n", ns, "-o", "wide", *trusting, url=url)
    assert column(wide.lines, "PROOF") == ["unproven"]
    history = skyctl("history", "svc", "web", "-n", ns, *trusting, url=url)
    assert column(history.lines, "PROOF") == ["unproven", "unproven"]
    events = skyctl("events", "-n", ns, *trusting, url=url)
    assert column(events.lines, "PROOF") == ["unproven", "unproven"]
    described = skyctl("describe", "svc", "web", "-n", ns, *trusting, url=url)
    assert "(unproven)" in described.out
