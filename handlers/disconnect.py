"""Stop work nobody is waiting for: a client that hangs up cancels its job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from pipelines.contract import errors

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    # The body has been read by now, so the next message is the disconnect (if it comes).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result; if the client goes first, `work` is cancelled (its queue place freed,
    its remaining steps skipped) and nobody is answered."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise errors.client_closed()
    return task.result()
