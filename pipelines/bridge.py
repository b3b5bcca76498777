"""One bridge from the thread that runs a job to the code that reads its events.

A job runs in a thread of its own (torch blocks; the event loop must not). Its previews appear
there, one by one, then its images or its failure. `EventBridge` hands them over in order:
to an asyncio reader (`async for`, LocalEngine) or to a plain one (`for`, the Modal GPU class's
generator method). A reader that leaves early sets `stop`, which the run checks after each step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from pipelines.contract.job import ImageEvent


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class EventBridge:
    """Previews as they are made, then one `completed` event per image; a failure is raised."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """With `loop`, read it with `async for` on that loop; without, with a plain `for`."""
        self.stop = threading.Event()
        self._loop = loop
        self._async: asyncio.Queue[object] = asyncio.Queue()
        self._plain: queue.SimpleQueue[object] = queue.SimpleQueue()

    def _put(self, item: object) -> None:
        if self._loop is None:
            self._plain.put(item)
        else:
            self._loop.call_soon_threadsafe(self._async.put_nowait, item)

    # --- the running side (any thread) ------------------------------------------------------

    def emit(self, event: ImageEvent) -> None:
        self._put(event)

    def finish(self, images: list[bytes]) -> None:
        for index, data in enumerate(images):
            self._put(ImageEvent(kind="completed", image_index=index, data=data))
        self._put(_END)

    def fail(self, error: BaseException) -> None:
        self._put(_Failed(error))

    # --- the reading side -----------------------------------------------------------------

    def _delivered(self, item: object) -> ImageEvent | None:
        if isinstance(item, _Failed):
            raise item.error
        return None if item is _END else item  # type: ignore[return-value]

    def __iter__(self) -> Iterator[ImageEvent]:
        try:
            while (event := self._delivered(self._plain.get())) is not None:
                yield event
        finally:
            self.stop.set()

    async def __aiter__(self) -> AsyncIterator[ImageEvent]:
        try:
            while (event := self._delivered(await self._async.get())) is not None:
                yield event
        finally:
            self.stop.set()


Run = Callable[[Callable[[ImageEvent], None], Callable[[], bool]], list[bytes]]


def events_in_thread(run: Run, name: str) -> Iterator[ImageEvent]:
    """`run(on_partial, cancelled)` in a new thread, as a plain generator of its events.

    Closing the generator early stops the run's remaining steps.
    """
    bridge = EventBridge()

    def produce() -> None:
        try:
            bridge.finish(run(bridge.emit, bridge.stop.is_set))
        except BaseException as exc:  # handed to the reader, raised there
            bridge.fail(exc)

    threading.Thread(target=produce, name=name, daemon=True).start()
    yield from bridge
