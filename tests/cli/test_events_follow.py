"""``events -f`` prints its header at once, before the first event arrives (as kubectl's
watches do), and the events after it under their columns."""

from __future__ import annotations

import time

from tests.helpers import Lines, skyctl, start


def test_follow_prints_its_header_before_any_event(url: str, ns: str) -> None:
    # A registry to follow (reads never create one), with nothing yet in this namespace.
    assert skyctl("create", "svc", "other", "-n", f"{ns}-x", url=url).code == 0
    began = time.monotonic()
    lines = Lines(start("events", "-n", ns, "-f", url=url))
    header = lines.next(timeout=20).rstrip("\n")
    assert header.split() == [
        "SEQ",
        "STORED",
        "ACTOR",
        "PROOF",
        "EVENT",
        "NAMESPACE",
        "NAME",
        "DETAILS",
    ]
    assert time.monotonic() - began < 20
    # An event written the moment the header shows is printed, under its columns.
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80", url=url).code == 0
    row = lines.next(timeout=20).rstrip("\n")
    assert row.split()[4:7] == ["ServiceCreated", ns, "web"]
    for column in ("EVENT", "NAMESPACE", "NAME"):
        assert row[header.index(column) - 1] == " ", (column, header, row)
    assert row.index("ServiceCreated") == header.index("EVENT")


def test_follow_in_json_prints_only_events(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "other", "-n", f"{ns}-x", url=url).code == 0
    lines = Lines(start("events", "-n", ns, "-f", "-o", "json", url=url))
    time.sleep(1)
    assert lines.lines == []  # no header in JSON: one object per line, events only
    assert skyctl("create", "svc", "web", "-n", ns, url=url).code == 0
    assert '"ServiceCreated"' in lines.next(timeout=20)
