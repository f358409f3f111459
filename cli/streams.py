"""Several live reads followed as one: ``get -w`` and ``wait`` follow a service's
endpoints and its status reports (subjects of their own) together, item by item in the
order they arrive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

__all__ = ["interleaved"]


@contextlib.asynccontextmanager
async def interleaved(*sources: AsyncIterable[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """The items of every source as one iterator, in arrival order. A source that fails
    fails the iterator (its error raised where the items are read); leaving the block
    stops every source."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump(source: AsyncIterable[Any]) -> None:
        try:
            async for item in source:
                await queue.put(item)
        except BaseException as exc:  # handed to the reader, raised there
            await queue.put(exc)
            raise

    async def items() -> AsyncIterator[Any]:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    pumps = [asyncio.create_task(pump(source)) for source in sources]
    try:
        yield items()
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
