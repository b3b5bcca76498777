"""Stop work nobody is waiting for: a client that hangs up cancels its job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from pipelines.contract import errors

T = TypeVar("T")

# How long a cancelled `work` may take to run its own clean-up (its `finally`: a Modal call's
# cancel is sent from there) before the request ends. Short: Modal's ASGI layer gives a cancelled
# app one second (`TaskContext(cancellation_grace=1.0)`, `modal/_utils/async_utils.py`).
CLEAN_UP_SECONDS = 0.5


async def _disconnected(request: Request) -> None:
    # The body has been read by now, so the next message is the disconnect (if it comes).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result; if the client goes first, `work` is cancelled (its queue place freed,
    its remaining steps skipped) and nobody is answered.

    A client goes in one of two ways: its server delivers `http.disconnect` (uvicorn), or it
    cancels the request's task (Modal's ASGI layer, `modal/_runtime/asgi.py` `asgi_app_wrapper`:
    when the input is cancelled its `TaskContext` cancels the app's task). `work` runs as a task of
    its own, so the second way would leave it running: it is cancelled then too."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request's own task was cancelled: nobody waits for `work` either
        await _stop(task)
        raise
    finally:
        watcher.cancel()
    if not task.done():
        await _stop(task)
        raise errors.client_closed()
    return task.result()


async def _stop(task: asyncio.Future[T]) -> None:
    """`task` cancelled, and given a moment to finish (so a generator it was advancing is free)."""
    task.cancel()
    await asyncio.wait({task}, timeout=CLEAN_UP_SECONDS)
