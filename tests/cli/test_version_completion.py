"""``skyctl version`` / ``--version`` (no server needed) and ``skyctl completion``: the
scripts, and completion of live service names from a real server."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from events import Service
from registry.client import Registry
from tests.helpers import Result, skyctl

DEAD = "nats://127.0.0.1:1"


def test_version_needs_no_server() -> None:
    expected = [
        f"skyctl {version('skyflow-registry')}",
        f"Python {platform.python_version()}",
        f"nats-py {version('nats-py')}",
    ]
    for args in (["--version"], ["version"]):
        result = skyctl(*args, url=DEAD)
        assert (result.code, result.lines, result.err) == (0, expected, "")
    as_json = skyctl("version", "-o", "json", url=DEAD)
    assert json.loads(as_json.out) == {
        "clientVersion": {
            "skyctl": version("skyflow-registry"),
            "python": platform.python_version(),
            "nats-py": version("nats-py"),
        }
    }


def test_version_is_cheap_to_ask(tmp_path: Path) -> None:
    """`--version` must not pay for the client it reports on: nats-py stays unimported."""
    out = tmp_path / "modules.json"
    script = (
        "import json, sys\nfrom cli.main import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        f"json.dump(sorted(sys.modules), open({str(out)!r}, 'w'))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=30)
    assert "nats" not in json.loads(out.read_text())


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = skyctl("completion", shell, url=DEAD)
    assert result.code == 0 and result.err == ""
    assert "skyctl" in result.out and "_SKYCTL_COMPLETE=complete_" + shell in result.out
    if shell == "zsh":
        assert result.lines[0] == "#compdef skyctl"  # what zsh's fpath loader reads
    if shell == "bash":
        check = subprocess.run(["bash", "-n"], input=result.out, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_completion_of_an_unknown_shell_is_refused() -> None:
    result = skyctl("completion", "tcsh", url=DEAD)
    assert result.code == 2 and result.err.startswith("error: ") and "tcsh" in result.err


def complete_bash(line: str, url: str, instruction: str = "complete_bash") -> Result:
    """What the bash script runs on TAB: the words so far and the index of the one being
    completed (an empty last word when the line ends with a space)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    return skyctl(
        url=url,
        env={
            "_SKYCTL_COMPLETE": instruction,
            "COMP_WORDS": line,
            "COMP_CWORD": str(cword),
        },
    )


@pytest.fixture
def live(url: str, ns: str) -> str:
    async def go() -> None:
        async with await Registry.connect(url) as registry:
            for name in ("web", "api", "apex", "db"):
                await registry.create(Service(namespace=ns, name=name))
            await registry.delete(ns, "db")  # deleted: not offered

    import asyncio

    asyncio.run(go())
    return ns


@pytest.mark.parametrize("verb", ["get", "delete", "history", "describe", "edit", "label"])
def test_names_complete_from_the_server(url: str, live: str, verb: str) -> None:
    result = complete_bash(f"skyctl {verb} service -n {live} ", url)
    assert result.code == 0, result.err
    assert sorted(result.lines) == ["apex", "api", "web"]
    assert complete_bash(f"skyctl {verb} svc --namespace {live} ap", url).lines == ["apex", "api"]


def test_names_complete_in_the_namespace_on_the_line(url: str, live: str) -> None:
    # No -n: the default namespace, which holds none of these.
    assert not {"api", "apex", "web"} & set(complete_bash("skyctl get service ", url).lines)
    # click's spelling of the instruction works as well as typer's
    assert complete_bash(f"skyctl get svc -n {live} w", url, "bash_complete").lines == ["web"]


def test_delete_does_not_offer_a_name_twice(url: str, live: str) -> None:
    assert sorted(complete_bash(f"skyctl delete svc -n {live} web ", url).lines) == ["apex", "api"]


def test_namespaces_commands_and_flags_complete(url: str, live: str) -> None:
    assert live in complete_bash(f"skyctl get svc -n {live[:6]}", url).lines
    assert complete_bash("skyctl ver", url).lines == ["version"]
    after_version = complete_bash("skyctl --version ", url).lines
    assert "get" in after_version and not any(line.startswith("skyctl ") for line in after_version)
    assert complete_bash("skyctl get svc --sort", url).lines == ["--sort-by"]
    formats = complete_bash("skyctl get svc -o j", url).lines
    assert formats == ["json", "jsonpath=", "jsonpath-file="]
    assert complete_bash("skyctl history svc x -o ", url).lines == ["table", "json", "yaml"]


def test_zsh_and_fish_get_names_too(url: str, live: str) -> None:
    line = f"skyctl get svc -n {live} a"
    zsh = skyctl(url=url, env={"_SKYCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": line})
    assert '"api"' in zsh.out and '"apex"' in zsh.out and "web" not in zsh.out
    fish = skyctl(
        url=url,
        env={
            "_SKYCTL_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": line,
        },
    )
    assert fish.lines == ["apex", "api"]


def test_no_server_means_no_suggestions_quickly_and_silently() -> None:
    started = time.monotonic()
    result = complete_bash("skyctl get svc ", DEAD)
    assert (result.code, result.out.strip(), result.err) == (0, "", "")
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_costs_at_most_the_timeout() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        started = time.monotonic()
        result = complete_bash("skyctl delete svc ", f"nats://127.0.0.1:{silent.getsockname()[1]}")
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        for conn in held:
            conn.close()
    assert (result.code, result.out.strip(), result.err) == (0, "", "")
    assert elapsed < 5


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_completes_live_names_in_bash(url: str, live: str, tmp_path: Path) -> None:
    """The real thing: bash sources the script and runs its function as TAB would."""
    wrapper = tmp_path / "skyctl"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cli "$@"\n')
    wrapper.chmod(0o755)
    script = skyctl("completion", "bash", url=DEAD).out
    program = (
        f"{script}\n"
        f'COMP_WORDS=(skyctl get svc -n {live} ""); COMP_CWORD=5\n'
        "_skyctl_completion skyctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env.update(NATS_URL=url, PATH=f"{tmp_path}:{env.get('PATH', '')}")
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, env=env, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["apex", "api", "web"]
