"""Random text at every flag and argument of every command: a one-line answer, an exit code
from the contract (0, 1, 2 or 3), never a traceback, and nothing appended for bad input."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import last_seq, skyctl

NS = f"fuzz-{uuid.uuid4().hex[:8]}"

# Every command that returns by itself, with a valid value for each of its slots; a
# test replaces one slot with random text. (`--watch`, `events -f` and `server` run until
# stopped, so they are left out.)
COMMANDS: list[list[str]] = [
    ["create", "service", "{name}", "-n", "{ns}", "-t", "ClusterIP", "-s", "app=web",
     "-p", "80:8080", "-c", "eu-1"],
    ["create", "svc", "{name}", "--namespace", "{ns}", "-o", "json"],
    ["get", "service", "{name}", "-n", "{ns}", "-o", "yaml"],
    ["get", "services", "-n", "{ns}", "--at", "1"],
    ["get", "svc", "-A", "-o", "wide"],
    ["delete", "service", "{name}", "-n", "{ns}", "--ignore-not-found"],
    ["history", "service", "{name}", "-n", "{ns}", "-o", "json"],
    ["events", "-n", "{ns}", "--since", "1", "-o", "json"],
    ["audit", "verify"],
    ["init", "--replicas", "1"],
    ["get", "svc", "-n", "{ns}", "-l", "app=web", "--sort-by", ".metadata.name",
     "-o", "jsonpath={{.items[*].metadata.name}}"],
    ["get", "svc", "-A", "--show-labels", "--no-headers", "-o", "custom-columns=N:.metadata.name"],
    ["version", "-o", "json"],
    ["completion", "bash"],
    ["get", "endpoints", "{name}", "-n", "{ns}", "-o", "wide"],
    ["get", "tasks", "-n", "{ns}", "-l", "app=web", "-o", "json"],
]  # fmt: skip

texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(
        [
            "",
            "-",
            "--",
            "²",
            "80:²",
            "0",
            "-1",
            "99999999999999999999",
            "1000000d",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "\x1b[31mred",
            "a\nb",
            "x" * 300,
            "app=",
            "=web",
            "80:8080/SCTP",
            "nats://127.0.0.1:1",
        ]
    ),
)


def slot_index(argv: list[str], slot: int) -> int:
    """Which word a slot replaces: one after the verb and noun, else any."""
    return 2 + slot % (len(argv) - 2) if len(argv) > 2 else slot % len(argv)


def test_the_examples_hit_the_values_they_name() -> None:
    assert COMMANDS[0][slot_index(COMMANDS[0], 8)] == "80:8080"
    assert COMMANDS[3][slot_index(COMMANDS[3], 3)] == "1"  # the --at value
    assert COMMANDS[7][slot_index(COMMANDS[7], 2)] == "1"  # the --since value


def run(argv: list[str]) -> tuple[int, str]:
    """skyctl in process with the environment the test set: exit code and stderr."""
    result = skyctl(*argv, url=os.environ["NATS_URL"], env=dict(os.environ))
    return result.code, result.err


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sampled_from(range(len(COMMANDS))), st.integers(0, 20), texts)
@example(0, 8, "²")  # -p ² (found by a user)
@example(0, 8, "80:²")
@example(3, 3, "1000000d")  # --at
@example(3, 3, "0001-01-01T00:00:00+01:00")
@example(7, 2, "99999999999999999999")  # events --since
def test_random_text_anywhere_gets_an_answer_from_the_contract(
    url: str, monkeypatch: pytest.MonkeyPatch, command: int, slot: int, text: str
) -> None:
    monkeypatch.setenv("NATS_URL", url)
    argv = [part.format(name="web", ns=NS) for part in COMMANDS[command]]
    argv[slot_index(argv, slot)] = text
    before = last_seq(url)
    code, err = run(argv)
    assert code in (0, 1, 2, 3), err
    assert "Traceback" not in err, err
    if code != 0:  # one line per failure (a delete of several names may have several)
        assert err and all(line.startswith("error: ") for line in err.splitlines()), err
    if code == 2:
        assert last_seq(url) == before, f"{argv} wrote to the log"


@pytest.mark.parametrize("value", ["²", "0", "9", "-1", "3x", "9999999999999999999999"])
def test_a_bad_replicas_variable_is_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NATS_URL", url)
    monkeypatch.setenv("SKYFLOW_REPLICAS", value)
    code, err = run(["get", "svc", "-n", NS])
    assert code == 2 and "SKYFLOW_REPLICAS" in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--address", "10.0.0.300"], '"10.0.0.300"'),
        (["--address", "10.0.0.1", "--ttl", "500ms"], '"500ms"'),
        (["--address", "10.0.0.1", "--ttl", "0s"], '"0s"'),
        (["--address", "10.0.0.1", "-l", "app web"], '"app web"'),
        (["--address", "10.0.0.1", "-l", ",".join(f"k{i}=v" for i in range(17))], "at most 16"),
        (["--address", "10.0.0.1", "-c", "eu.1"], '"eu.1"'),
        (["--address", "10.0.0.1", "-n", "a*"], '"a*"'),
        (["--address", "\x1b[31m"], "\\x1b[31m"),
    ],
)
def test_announce_refuses_bad_input_in_one_line_and_writes_nothing(
    url: str, monkeypatch: pytest.MonkeyPatch, flags: list[str], named: str
) -> None:
    from registry.client import Registry

    monkeypatch.setenv("NATS_URL", url)
    code, err = run(["announce", "task", "fuzzed", "-n", NS, *flags])
    assert code == 2 and err.count("\n") == 1 and named in err, err

    async def announced() -> list[str]:
        async with await Registry.connect(url) as registry:
            return [t.name for t in await registry.tasks(NS)]

    assert asyncio.run(announced()) == []
