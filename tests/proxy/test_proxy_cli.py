"""``skyctl proxy`` refuses bad input in one line naming it, before it touches anything."""

from __future__ import annotations

import pytest

from registry.jetstream.server import NatsServer
from tests.helpers import last_seq, skyctl


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--mode", "iptables"], "iptables"),
        (["--node-address", "not-an-ip"], "not-an-ip"),
        (["--node-address", "0.0.0.0"], "0.0.0.0"),
        (["--node-address", "fd00::1"], "fd00::1"),
        (["--table", "a b"], "a b"),
        (["--table", "x" * 65], "x" * 65),
        (["--check-every", "0"], "0"),
    ],
)
def test_bad_input_is_one_line_naming_it_and_writes_nothing(
    fresh_server: NatsServer, args: list[str], named: str
) -> None:
    before = last_seq(fresh_server.url)
    got = skyctl("proxy", *args, url=fresh_server.url)
    assert got.code == 2, got
    lines = got.err.splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in got.err, got.err
    assert last_seq(fresh_server.url) == before
