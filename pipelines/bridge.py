"""One bridge from the thread that runs a job to the asyncio code that reads its events.

A job runs in a thread of its own (torch blocks; the event loop must not). Its previews appear
there, one by one, then its images or its failure. `EventBridge` hands them over in order to an
`async for` on the loop (LocalEngine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pipelines.contract.job import ImageEvent, Rendered


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class EventBridge:
    """Previews as they are made, then one `completed` event per image; a failure is raised."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read it with `async for` on `loop`."""
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def _put(self, item: object) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    # --- the running side (any thread) ------------------------------------------------------

    def emit(self, event: ImageEvent) -> None:
        self._put(event)

    def finish(self, rendered: Rendered) -> None:
        for index, data in enumerate(rendered.images):
            self._put(ImageEvent(kind="completed", image_index=index, data=data, usage=rendered.usage))
        self._put(_END)

    def fail(self, error: BaseException) -> None:
        self._put(_Failed(error))

    # --- the reading side -----------------------------------------------------------------

    def _delivered(self, item: object) -> ImageEvent | None:
        if isinstance(item, _Failed):
            raise item.error
        return None if item is _END else item  # type: ignore[return-value]

    async def __aiter__(self) -> AsyncIterator[ImageEvent]:
        while (event := self._delivered(await self._queue.get())) is not None:
            yield event
