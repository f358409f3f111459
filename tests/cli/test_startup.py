"""What a one-shot ``skyctl`` command imports, so start-up cannot regress silently.

A one-shot command lives for a few round trips; most of its time is imports (the
import-time table in docs/benchmarks.md). The design allows it the event models
(pydantic: the one reader of the log) and the wire client; it must not import nats-py
(about a hundred milliseconds), YAML (a table was asked for), rich, or the test and
schema tooling. (ssl it cannot avoid: asyncio imports it.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import skyctl

SCRIPT = """
import json, sys
from cli.main import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
with open(sys.argv[1], "w") as out:
    json.dump(sorted({name.partition(".")[0] for name in sys.modules}), out)
sys.exit(code)
"""

FORBIDDEN = {"nats", "nkeys", "yaml", "jsonschema", "hypothesis", "trustme", "rich", "jsonpath"}
ALLOWED_HEAVY = {"asyncio", "pydantic", "pydantic_core", "msgpack", "typer"}


def imported_by(tmp_path: Path, url: str, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    env["NATS_URL"] = url
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "command",
    [
        ("create", "service", "web", "-s", "app=web", "-p", "80:8080"),
        ("get", "service", "web"),
        ("get", "service"),
        ("delete", "service", "web"),
    ],
    ids=["create", "get", "list", "delete"],
)
def test_one_shot_commands_import_neither_nats_py_nor_ssl_nor_yaml(
    tmp_path: Path, url: str, ns: str, command: tuple[str, ...]
) -> None:
    if command[0] != "create":
        assert skyctl("create", "svc", "web", "-n", ns, url=url).code in (0, 1)
    modules = imported_by(tmp_path, url, *command, "-n", ns)
    assert modules & FORBIDDEN == set()
    assert ALLOWED_HEAVY - {"typer"} <= modules  # the event models read what the log holds


def test_yaml_is_imported_when_yaml_is_printed(tmp_path: Path, url: str, ns: str) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, url=url).code == 0
    assert "yaml" in imported_by(tmp_path, url, "get", "svc", "web", "-n", ns, "-o", "yaml")


def test_jsonpath_is_imported_only_when_a_path_is_asked_for(
    tmp_path: Path, url: str, ns: str
) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, url=url).code == 0
    for asked in (["-o", "jsonpath={.items[*].metadata.name}"], ["--sort-by", ".metadata.name"]):
        assert "jsonpath" in imported_by(tmp_path, url, "get", "svc", "-n", ns, *asked)
    assert "jsonpath" not in imported_by(tmp_path, url, "get", "svc", "-n", ns, "-l", "app")


def test_library_programs_use_nats_py_which_reconnects(tmp_path: Path, url: str, ns: str) -> None:
    """The other side of the rule: long-lived commands get the client that reconnects."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    env["NATS_URL"] = url
    script = SCRIPT.replace(
        "main(sys.argv[2:])",
        "import asyncio\n"
        "    from registry.client import Registry\n"
        "    async def go():\n"
        "        async with await Registry.connect(sys.argv[3]) as r:\n"
        "            await r.list()\n"
        "    asyncio.run(go())",
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out), "x", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nats" in set(json.loads(out.read_text()))
