"""``skyctl``'s entry point: ask the node agent, else run the command here.

This module is what every ``skyctl`` process imports first, so it imports almost
nothing: a read that the agent answers (``cli/agent.py``) costs this module, the stdlib
socket and JSON, and one round trip over a unix socket, never pydantic, asyncio, nats-py
or typer. Anything the agent does not answer runs here as it always has (``cli.main``).

Either way the process ends with ``os._exit`` once its output is flushed: a one-shot
command has nothing left to do at interpreter teardown but free memory it is about to
give back anyway (tens of milliseconds with pydantic loaded).

Two more things a one-shot process need not pay for (about 10-15 ms of a ``get``):

- **The cycle collector during start-up.** Importing typer, pydantic and the event models
  and building the models allocates enough container objects to run about ninety young
  collections that find almost nothing. The collector is off from here until the command
  has run for ``cli.lifetime.COLLECT_AFTER_S`` (a one-shot command ends before) or runs
  until stopped (``run_until_stopped``, the agent, ``dns``, ``announce``): then it is on.
- **pydantic's plugin discovery**, which scans every installed distribution's entry points
  when the first model is built. ``PYDANTIC_DISABLE_PLUGINS=__all__`` unless the caller set
  it: ``skyctl`` has no use for pydantic plugins (a caller who wants one sets the variable).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

from cli.hosted import hostable

__all__ = ["exit_status", "main"]


def _finish(code: int) -> None:
    """Flush what was written, then leave without interpreter teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib costs this module a few milliseconds)
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # a closed pipe (| head): what was wanted has been read
    os._exit(code)


def exit_status(run: Callable[[], object]) -> int:
    """Run a command and give the exit status its process would end with: what its
    ``SystemExit`` says (a message printed to stderr, then 1), 130 for Ctrl-C, else 0.
    The agent gives the same status for a command it runs (``cli/agent.py``)."""
    try:
        run()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _via_agent(argv: list[str]) -> int | None:
    """The command's exit code if the agent ran it (its output written), else None."""
    from cli.hosted import AGENT_ENV, agent_socket

    path = agent_socket(argv)
    explicit = bool(os.environ.get(AGENT_ENV))
    if path is None or not (explicit or os.path.lexists(path)):
        return None  # no agent here: nothing more is loaded for it
    from registry.agent.client import ask, trusted
    from registry.agent.wire import Request

    why = trusted(path)
    if why is not None:
        if explicit or "belongs to" in why or "written by others" in why:
            print(f"skyctl: not using the agent: {why}", file=sys.stderr)
        return None
    reply, why = ask(path, Request(argv, dict(os.environ), os.getcwd()))
    if reply is None or reply.status != "done":
        shown = why or (reply.why if reply is not None else "")
        if reply is None or reply.status == "refused" or reply.info.get("warn"):
            print(f"skyctl: reading the server directly: {shown}", file=sys.stderr)
        return None
    try:
        sys.stdout.buffer.write(reply.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(reply.stderr)
    except BrokenPipeError:
        pass
    return reply.code


def main() -> None:
    gc.disable()  # until the command has run a while (cli.lifetime), or for good
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = sys.argv[1:]
    if hostable(argv):
        code = _via_agent(argv)
        if code is not None:
            _finish(code)
    from cli.main import main as run_here

    _finish(exit_status(lambda: run_here(argv)))
