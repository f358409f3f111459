"""Where a command looks for the agent: ``$SKYFLOW_AGENT``, else the context's agent (set by
``skyctl config set-context --agent``), else the user's default."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from cli.hosted import agent_socket, hostable
from cli.lifetime import hosted_on, run_command
from tests.helpers import skyctl


def test_the_environment_beats_the_context_beats_the_default(tmp_path: Path) -> None:
    home = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(home), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    assert agent_socket(["get", "svc"], env) == str(tmp_path / "run" / "skyflow" / "agent.sock")
    no_runtime = {"XDG_CONFIG_HOME": str(home)}
    assert agent_socket([], no_runtime) == f"/tmp/skyflow-{os.getuid()}/agent.sock"

    made = skyctl("config", "set-context", "shop", "--agent", "/srv/agent.sock", url=None, env=env)
    assert made.code == 0, made.err
    skyctl("config", "set-context", "other", url=None, env=env)
    # The context named by the flag, by either variable, or selected.
    assert agent_socket(["get", "svc", "--context", "shop"], env) == "/srv/agent.sock"
    assert agent_socket(["get", "svc", "--context=shop"], env) == "/srv/agent.sock"
    assert agent_socket(["get"], {**env, "SKYFLOW_CONTEXT": "shop"}) == "/srv/agent.sock"
    assert agent_socket(["get"], {**env, "NATS_CONTEXT": "shop"}) == "/srv/agent.sock"
    assert agent_socket(["get", "--context", "other"], env) == agent_socket([], env)
    skyctl("config", "use-context", "shop", url=None, env=env)
    assert agent_socket(["get"], env) == "/srv/agent.sock"
    # The variable beats the context; "off" turns the agent off.
    assert agent_socket(["get"], {**env, "SKYFLOW_AGENT": "/x.sock"}) == "/x.sock"
    assert agent_socket(["get"], {**env, "SKYFLOW_AGENT": "off"}) is None
    # An empty --agent forgets it.
    skyctl("config", "set-context", "shop", "--agent", "", url=None, env=env)
    assert agent_socket(["get"], env) == str(tmp_path / "run" / "skyflow" / "agent.sock")


def test_only_reads_that_end_are_offered_to_the_agent() -> None:
    for argv in (
        ["get", "svc"],
        ["get", "svc", "-n", "shop", "-o", "json"],
        ["describe", "svc", "x"],
        ["history", "svc", "x"],
        ["get", "endpoints", "--", "-w"],
    ):
        assert hostable(argv, {}), argv
    for argv in (
        [],
        ["create", "svc", "x"],
        ["get", "svc", "-w"],
        ["get", "svc", "-Aw"],
        ["get", "svc", "--watch"],
        ["get", "svc", "--watch-only"],
        ["get", "svc", "--help"],
        ["get", "-h"],
        ["get", "svc", "-f", "-"],
        ["apply", "-f", "x.yaml"],
        ["events", "-f"],
    ):
        assert not hostable(argv, {}), argv
    assert not hostable(["get", "svc"], {"_SKYCTL_COMPLETE": "complete_bash"})


def test_a_hosted_command_that_exits_leaves_the_hosts_loop_running() -> None:
    """``fail`` inside a command's coroutine raises SystemExit: hosted, it reaches the
    command's thread as it would a process, and the agent's loop runs on."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:

        async def exits() -> None:
            raise SystemExit(3)

        async def answers() -> int:
            await asyncio.sleep(0)
            return 42

        with hosted_on(loop):
            with pytest.raises(SystemExit) as exited:
                run_command(exits())
            assert exited.value.code == 3
            with pytest.raises(KeyboardInterrupt):
                run_command(_interrupted())
            assert run_command(answers()) == 42  # the loop still runs
        assert thread.is_alive()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _interrupted() -> None:
    raise KeyboardInterrupt
