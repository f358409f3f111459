"""How a command's coroutine runs: ``run_command`` for one-shot commands, on a loop of their own
or, when the node agent hosts the command, on the agent's loop beside its warm
connection; ``run_until_stopped`` for commands that run until stopped (``announce
task``, ``dns``): Ctrl-C and SIGTERM end them successfully, after their cleanup has run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import gc
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["hosted_on", "run_command", "run_until_stopped"]

T = TypeVar("T")

# The launcher (``cli.launch``) starts a process with the cycle collector off; a command
# still running after this many seconds is not one-shot, and collects from then on.
COLLECT_AFTER_S = 1.0

# The loop of the agent hosting the command that runs in this thread, if any.
_HOST: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "skyflow_host_loop", default=None
)


@contextlib.contextmanager
def hosted_on(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Within this block, ``run_command`` hands coroutines to ``loop`` (the agent's, running in
    another thread) instead of starting a loop of its own: the command's code runs here,
    its I/O over the agent's connection there."""
    token = _HOST.set(loop)
    try:
        yield
    finally:
        _HOST.reset(token)


class _Carried(Exception):
    """A command's SystemExit or KeyboardInterrupt on its way out of the host's loop."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


def run_command(main: Coroutine[Any, Any, T]) -> T:
    """Run a one-shot command's coroutine to its end and return its result.

    Hosted (``hosted_on``), the coroutine runs as a task of the agent's loop in a copy of
    this thread's context, so what it prints goes where this command's output goes."""
    loop = _HOST.get()
    if loop is None:
        return asyncio.run(_collecting_later(main))
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    async def carried() -> T:
        # SystemExit or KeyboardInterrupt raised by the command (``fail`` in a coroutine)
        # would stop the agent's own loop: carried to this thread instead, as any error.
        try:
            return await main
        except (SystemExit, KeyboardInterrupt) as exc:
            raise _Carried(exc) from None

    def start() -> None:
        task = loop.create_task(carried())

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.set_exception(concurrent.futures.CancelledError())
            elif isinstance(error := task.exception(), _Carried):
                done.set_exception(error.exc)
            elif error is not None:
                done.set_exception(error)
            else:
                done.set_result(task.result())

        task.add_done_callback(finished)

    loop.call_soon_threadsafe(start, context=contextvars.copy_context())
    return done.result()


async def _collecting_later(main: Coroutine[Any, Any, T]) -> T:
    """``main``, turning the cycle collector on if it is off once ``main`` has run
    ``COLLECT_AFTER_S`` (a watch, a long apply)."""
    if not gc.isenabled():
        asyncio.get_running_loop().call_later(COLLECT_AFTER_S, gc.enable)
    return await main


def run_until_stopped(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` until it returns, or until SIGINT or SIGTERM cancels it (its
    ``finally`` blocks run: a task is withdrawn, a socket closed).

    SIGINT is handled too, not left to KeyboardInterrupt: a shell starts a background job
    (``skyctl announce ... &`` in a script) with SIGINT ignored, and it must still stop
    cleanly when told to.
    """

    async def until_stopped() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            # (Python lets only the main thread handle signals; a command run from
            # another thread is stopped by its caller.)
            for stop in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(stop, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    gc.enable()  # not one-shot: collects from the start (see cli.launch)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it ends, successfully
        asyncio.run(until_stopped())
