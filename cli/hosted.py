"""Which command lines the node agent answers (reads that end), and where a command finds
the agent. Stdlib only: the thin client (``cli/launch.py``) asks these before anything
else is loaded; the agent (``cli/agent.py``) runs nothing else; and which context a
command uses is decided here for ``cli/contexts.py`` too, so there is one rule."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "AGENT_ENV",
    "COMPLETE_VAR",
    "CONTEXT_ENV",
    "HOSTED",
    "NATS_CONTEXT_ENV",
    "agent_socket",
    "config_home",
    "context_name",
    "default_socket",
    "hostable",
    "selected_context",
    "skyctl_context_file",
]

AGENT_ENV = "SKYFLOW_AGENT"
COMPLETE_VAR = "_SKYCTL_COMPLETE"  # set: the shell asks for completions (cli/completion.py)
CONTEXT_ENV = "SKYFLOW_CONTEXT"
NATS_CONTEXT_ENV = "NATS_CONTEXT"

# The commands the agent hosts: reads that end. A watch, a help screen, or anything
# reading stdin ("-") runs here.
HOSTED = ("get", "describe", "history")
_LONG = ("--watch", "--watch-only", "--help")


def hostable(argv: list[str], env: Mapping[str, str] = os.environ) -> bool:
    """Whether the agent may answer this command line: the client asks it only then, and
    the agent runs nothing else (``cli/agent.py``)."""
    if not argv or argv[0] not in HOSTED or env.get(COMPLETE_VAR):
        return False
    for token in argv[1:]:
        if token == "--":
            break
        if token == "-" or token.split("=", 1)[0] in _LONG:
            return False
        if token.startswith("-") and not token.startswith("--") and ("w" in token or "h" in token):
            return False  # -w, -h, or short flags run together (-Aw)
    return True


def config_home(env: Mapping[str, str] = os.environ) -> str:
    """``$XDG_CONFIG_HOME``, else ``~/.config``, as natscli finds it."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg:
        return xdg
    return os.path.join(env.get("HOME", "") or os.path.expanduser("~"), ".config")


def selected_context(env: Mapping[str, str] = os.environ) -> str | None:
    """The name in the nats CLI's ``context.txt``, if any (as natscli reads it: trimmed)."""
    try:
        with open(os.path.join(config_home(env), "nats", "context.txt"), "rb") as file:
            text = file.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def context_name(flag: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """Which context a command uses: the flag, ``$SKYFLOW_CONTEXT``, ``$NATS_CONTEXT``, the
    selected one, or none."""
    for candidate in (flag, env.get(CONTEXT_ENV), env.get(NATS_CONTEXT_ENV)):
        if candidate:
            return candidate
    return selected_context(env)


def skyctl_context_file(name: str, env: Mapping[str, str] = os.environ) -> str:
    """skyctl's own settings for the context ``name`` (beside the nats CLI's file)."""
    return os.path.join(config_home(env), "skyflow", "contexts", f"{name}.json")


def _context_flag(argv: list[str]) -> str | None:
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token == "--context" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--context="):
            return token.partition("=")[2]
    return None


def agent_socket(argv: list[str], env: Mapping[str, str] = os.environ) -> str | None:
    """The agent socket a command should try (None: no agent): ``$SKYFLOW_AGENT`` (``off``
    or empty: none), else the ``agent`` of the context in use (``skyctl config
    set-context NAME --agent PATH``), else the default (``default_socket``)."""
    given = env.get(AGENT_ENV)
    if given is not None:
        return None if given.strip() in ("", "off", "none") else given
    name = context_name(_context_flag(argv), env)
    if name and "/" not in name and ".." not in name:
        kept = None
        path = skyctl_context_file(name, env)
        if os.path.exists(path):
            import json  # (only here: a command without a context pays nothing for it)

            try:
                with open(path, "rb") as file:
                    kept = json.loads(file.read())
            except (OSError, ValueError):
                kept = None
        agent = kept.get("agent") if isinstance(kept, dict) else None
        if isinstance(agent, str) and agent:
            return os.path.expanduser(agent)
    return default_socket(env)


def default_socket(env: Mapping[str, str] | None = None) -> str:
    """Where a user's agent listens unless told otherwise: the user's runtime directory
    (``$XDG_RUNTIME_DIR``, private by definition), else a directory of the user's own
    under /tmp."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        return os.path.join(runtime, "skyflow", "agent.sock")
    return f"/tmp/skyflow-{os.getuid()}/agent.sock"
