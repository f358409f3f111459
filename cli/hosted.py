"""Which command lines the node agent answers: reads that end. Stdlib only, as the thin
client (``cli/launch.py``) asks it before anything else is loaded, and the agent
(``cli/agent.py``) runs nothing else."""

from __future__ import annotations

import os

__all__ = ["HOSTED", "hostable"]

# The commands the agent hosts: reads that end. A watch, a help screen, or anything
# reading stdin ("-") runs here.
HOSTED = ("get", "describe", "history")
_LONG = ("--watch", "--watch-only", "--help")


def hostable(argv: list[str], env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the agent may answer this command line: the client asks it only then, and
    the agent runs nothing else (``cli/agent.py``)."""
    if not argv or argv[0] not in HOSTED or env.get("_SKYCTL_COMPLETE"):
        return False
    for token in argv[1:]:
        if token == "--":
            break
        if token == "-" or token.split("=", 1)[0] in _LONG:
            return False
        if token.startswith("-") and not token.startswith("--") and ("w" in token or "h" in token):
            return False  # -w, -h, or short flags run together (-Aw)
    return True
