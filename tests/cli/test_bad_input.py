"""Random text at every flag and argument of every command: a one-line answer, an exit code
from the contract (0, 1, 2 or 3), never a traceback, and nothing appended for bad input."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry.jetstream.server import NatsServer
from tests.helpers import last_seq, raw_nats, skyctl

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
        (["--address", "10.0.0.1", "--labels", "app web"], '"app web"'),
        (
            ["--address", "10.0.0.1", "--labels", ",".join(f"k{i}=v" for i in range(17))],
            "at most 16",
        ),
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


# -- input a user or the log supplies: never a traceback ------------------------------------

_HUGE = "1" + "0" * 5000  # past Python's int-from-text limit (4,300 digits)


def _manifest(ports: str, *, version: str = "") -> str:
    meta = f"name: huge\n  namespace: {NS}\n" + (
        f"  resourceVersion: {version}\n" if version else ""
    )
    return f"apiVersion: skyflow.io/v1\nkind: Service\nmetadata:\n  {meta}spec:\n  ports:\n{ports}"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (_manifest(f"  - port: {_HUGE}\n"), "5001 digits"),
        (_manifest(f"  - port: 80\n    targetPort: {_HUGE}\n"), "line 9"),
        (_manifest(f"  - port: 80\n    nodePort: -{_HUGE}\n"), "line 9"),
        (_manifest("  - port: 80\n", version=_HUGE), "line 6"),
        (_manifest(f"  - port: 0x{'f' * 5000}\n"), "5002 digits"),
        (_manifest(f"  - port: 0b{'1' * 20000}\n"), "20002 digits"),
        (_manifest(f"  - port: 1{'_0' * 5000}\n"), "5001 digits"),
        (f'{{"apiVersion": "skyflow.io/v1", "kind": "Service", "metadata": {{"name": "huge"}}, '
         f'"spec": {{"ports": [{{"port": {_HUGE}}}]}}}}', "5001 digits"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("verb", ["apply", "create"])
def test_a_manifest_with_a_huge_number_is_one_line_and_writes_nothing(
    url: str, verb: str, text: str, named: str
) -> None:
    before = last_seq(url)
    result = skyctl(verb, "-f", "-", url=url, stdin=text)
    assert result.code == 2 and result.err.count("\n") == 1, result.err[-3000:]
    assert result.err.startswith("error: ") and named in result.err, result.err
    assert len(result.err) < 400 and last_seq(url) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["events", "-n", NS, "--since", _HUGE],
        ["get", "svc", "-n", NS, "--at", _HUGE],
        ["create", "svc", "huge", "-n", NS, "-p", _HUGE],
        ["create", "svc", "huge", "-n", NS, "-p", f"80:{_HUGE}"],
    ],
    ids=["since", "at", "port", "target-port"],
)
def test_a_huge_number_in_a_flag_is_one_line_and_writes_nothing(url: str, argv: list[str]) -> None:
    before = last_seq(url)
    result = skyctl(*argv, url=url)
    assert result.code == 2 and result.err.count("\n") == 1, result.err[-3000:]
    assert result.err.startswith("error: ") and last_seq(url) == before, result.err[-300:]


@pytest.mark.parametrize("flag", ["--server", "--inbox-prefix", "--user", "--token"])
def test_a_connection_flag_that_is_not_utf8_is_one_line(url: str, flag: str) -> None:
    """Bytes that are not UTF-8 in an argument reach Python as lone surrogates (as
    ``$'\\xff'`` in a shell gives them), which no socket or subject can carry."""
    result = skyctl("get", "svc", "-n", NS, flag, "nats://\udcff", url=url)
    assert result.code == 2 and result.err.count("\n") == 1, result.err[-3000:]
    assert result.err.startswith(f"error: invalid {flag} ") and "UTF-8" in result.err


@pytest.mark.parametrize("verb", ["apply", "create"])
def test_stdin_that_is_not_utf8_is_one_line_and_writes_nothing(url: str, verb: str) -> None:
    before = last_seq(url)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", verb, "-f", "-"],
        input=b"apiVersion: skyflow.io/v1\nkind: Service\nmetadata:\n  name: \xff\xfe\xc3\n",
        capture_output=True,
        env={**os.environ, "NATS_URL": url},
        timeout=60,
    )
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith("error: ") and "<stdin>" in err and "UTF-8" in err, err
    assert last_seq(url) == before


def _editor(tmp_path: Path, body: str) -> dict[str, str]:
    """An editor (a Python script) that does ``body`` to the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(f"import os, sys\npath = sys.argv[1]\n{body}\n")
    return {"SKYFLOW_EDITOR": f"{sys.executable} {script}"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("open(path, 'wb').write(b'apiVersion: skyflow.io/v1\\nkind: \\xff\\xfe\\n')", "UTF-8"),
        ("os.remove(path)", "no longer there"),
        ("os.remove(path); os.mkdir(path)", "cannot be read"),
        (f"open(path, 'a').write('  x: {_HUGE}\\n')", "5001 digits"),
        (
            "text = open(path).read().replace('port: 80', 'port: " + _HUGE + "')\n"
            "open(path, 'w').write(text)",
            "5001 digits",
        ),
    ],
)
def test_an_editor_that_leaves_odd_bytes_or_no_file_is_one_line_and_applies_nothing(
    url: str, ns: str, tmp_path: Path, body: str, named: str
) -> None:
    assert skyctl("create", "svc", "edited", "-n", ns, "-p", "80", url=url).code == 0
    before = last_seq(url)
    result = skyctl("edit", "svc", "edited", "-n", ns, url=url, env=_editor(tmp_path, body))
    assert result.code == 2 and result.err.count("\n") == 1, result.err[-3000:]
    assert result.err.startswith("error: ") and named in result.err, result.err
    assert last_seq(url) == before


async def test_sorting_and_filtering_by_what_a_writer_chose_costs_little_and_never_fails(
    url: str, ns: str
) -> None:
    """A writer picks its actor (any text of up to 256 characters); a reader sorting or
    filtering by it gets an answer, promptly."""
    from events import Service, ServiceCreated, encode, new_event_id, utc_now

    assert skyctl("create", "svc", "plain", "-n", ns, url=url).code == 0
    actors = {"digits": "0" + "9" * 255, "super": "²", "arabic": "١٢٣", "as": "a" * 40 + "!"}
    async with raw_nats(url) as nc:
        for name, actor in actors.items():
            event = ServiceCreated(
                id=new_event_id(), time=utc_now(), actor=actor,
                service=Service(namespace=ns, name=name),
            )  # fmt: skip
            await nc.jetstream().publish(f"skyflow.svc.{ns}.{name}", encode(event))
    started = time.monotonic()
    for sort in (".metadata.createdBy", "{.metadata.createdBy}"):
        result = skyctl("get", "svc", "-n", ns, "--sort-by", sort, "-o", "name", url=url)
        assert result.code == 0, result.err[-3000:]
        assert len(result.lines) == 5
    # Regular expressions (a python-jsonpath extension kubectl's JSONPath does not have)
    # backtrack: /(a+)+$/ over the "as" actor would run for hours. Refused, whatever the
    # pattern, before anything is read.
    for path in (
        "{.items[?(@.metadata.createdBy =~ /a.*/)].metadata.name}",
        '{.items[?match(@.metadata.createdBy, "a.*")].metadata.name}',
        '{.items[?search(@.metadata.createdBy, "a")].metadata.name}',
    ):
        result = skyctl("get", "svc", "-n", ns, "-o", f"jsonpath={path}", url=url)
        assert result.code == 2 and "regular expression" in result.err, result.err[-3000:]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("value", ["bad!", "", "a.b", "-x", "x" * 64, "ns\n2"])
def test_init_refuses_a_bad_namespace_before_touching_anything(
    fresh_server: NatsServer, value: str
) -> None:
    got = skyctl("init", "--namespace", value, url=fresh_server.url)
    assert got.code == 2 and got.err.count("\n") == 1, got.err
    assert got.err.startswith("error: invalid namespace") and "Traceback" not in got.err

    async def streams() -> object:
        async with raw_nats(fresh_server.url) as nc:
            reply = await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=5)
            return json.loads(reply.data).get("streams")

    assert asyncio.run(streams()) is None  # nothing was made
