"""Commands that run until stopped (``announce task``, ``dns``): Ctrl-C and SIGTERM end
them successfully, after their cleanup has run."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["run_until_stopped"]


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

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it ends, successfully
        asyncio.run(until_stopped())
