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
    json.dump(sorted(sys.modules), out)
sys.exit(code)
"""

FORBIDDEN = {"nats", "nkeys", "yaml", "jsonschema", "hypothesis", "trustme", "rich", "jsonpath"}
ALLOWED_HEAVY = {"asyncio", "pydantic", "pydantic_core", "msgpack", "typer"}


def imported_by(tmp_path: Path, url: str, *args: str, modules: bool = False) -> set[str]:
    """The top-level packages the command ``args`` imported (with ``modules``: every
    module, by its full name)."""
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
    names = set(json.loads(out.read_text()))
    return names if modules else {name.partition(".")[0] for name in names}


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


@pytest.mark.parametrize(
    "command",
    [
        ("get", "service", "web"),
        ("create", "service", "web2", "-s", "app=web"),
        ("delete", "service", "web"),
    ],
    ids=["get", "create", "delete"],
)
def test_a_verb_loads_only_its_own_module(
    tmp_path: Path, url: str, ns: str, command: tuple[str, ...]
) -> None:
    """``skyctl`` names its verbs in a table and imports a verb's module only when that
    verb runs: ``get`` does not pay for ``dns``, ``proxy``, ``history`` or ``apply``."""
    from cli.main import VERBS, Verb

    assert skyctl("create", "svc", "web", "-n", ns, url=url).code in (0, 1)
    loaded = imported_by(tmp_path, url, *command, "-n", ns, modules=True)

    def modules_of(verb: Verb) -> set[str]:
        return {t.partition(":")[0] for t in [verb.target, *(n[1] for n in verb.nouns)]}

    own = modules_of(VERBS[command[0]])
    others = set().union(*map(modules_of, VERBS.values())) - own
    # (--version is the root's own option: its module is loaded whatever runs.)
    assert own <= loaded
    assert loaded & (others - {"cli.version", "cli.completion"}) == set()
    assert loaded & {"cli.dns", "cli.proxy", "cli.history", "cli.apply"} == set()
    # A read loads the read side of a service's state only (registry.services.current).
    writes = {"registry.services.writer", "registry.services.batch", "registry.addresses.allocator"}
    assert (loaded & writes == set()) == (command[0] == "get"), loaded & writes


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


LEFT_FOR_EXIT = """
import atexit, json, sys, threading
registered = []
register = atexit.register
def noted(function, *args, **kwargs):
    registered.append(f"{function.__module__}.{function.__qualname__}")
    return register(function, *args, **kwargs)
atexit.register = noted
from cli.main import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
left = {
    "code": code,
    # (logging's flushes its handlers: stderr, which the launcher flushes anyway.)
    "atexit": [name for name in registered if name != "logging.shutdown"],
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
}
print(json.dumps(left), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("command", "code"),
    [(("get", "service", "web"), 0), (("get", "service", "nothing"), 1), (("get", "bogus"), 2)],
)
def test_nothing_is_left_for_interpreter_exit(
    url: str, ns: str, command: tuple[str, ...], code: int
) -> None:
    """A launcher may end the process with ``os._exit`` as soon as ``main`` is done (no
    interpreter teardown): so ``main`` ends with its exit code, its connection closed,
    no thread running and nothing registered to run at exit."""
    assert skyctl("create", "svc", "web", "-n", ns, url=url).code in (0, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "SKYFLOW_"))}
    proc = subprocess.run(
        [sys.executable, "-c", LEFT_FOR_EXIT, *command, "-n", ns],
        capture_output=True,
        text=True,
        env={**env, "NATS_URL": url},
        timeout=30,
    )
    left = json.loads(proc.stderr.splitlines()[-1])
    assert left == {"code": code, "atexit": [], "threads": []}, proc.stderr


def test_the_cycle_collector_waits_out_a_one_shot_command_only() -> None:
    """``cli.launch`` starts with the collector off; a command that ends within
    ``COLLECT_AFTER_S`` leaves it off, one that runs longer (a watch) turns it on."""
    import asyncio
    import gc

    from cli import lifetime

    was = gc.isenabled()
    try:
        gc.disable()
        lifetime.run_command(asyncio.sleep(0))
        assert not gc.isenabled()
        lifetime.run_command(asyncio.sleep(lifetime.COLLECT_AFTER_S + 0.2))
        assert gc.isenabled()
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def test_the_launcher_turns_the_cycle_collector_off_and_pydantic_plugins_off(
    tmp_path: Path,
) -> None:
    script = (
        "import gc, os, sys\n"
        "import cli.main\n"
        "def record(argv):\n"
        "    print(gc.isenabled(), os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
        "cli.main.main = record\n"
        "sys.argv = ['skyctl', 'version']\n"
        "from cli.launch import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.stdout.split() == ["False", "__all__"], proc.stderr
