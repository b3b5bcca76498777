"""LocalEngine: runs Jobs on an in-process Worker, off the event loop, one thread per model."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from handlers.errors import APIError
from handlers.job import ImageEvent, Job
from pipelines.worker import Cancelled, Worker

log = logging.getLogger("imagegen")


class LocalEngine:
    """One thread per model: a model's Jobs run in order (its scheduler holds per-run state),
    different models run side by side, and the event loop stays free for other requests."""

    def __init__(self, worker: Worker, preload: bool = False) -> None:
        self.worker = worker
        self.preload = preload
        self._threads = {
            model_id: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imagegen-{model_id}")
            for model_id in worker.specs
        }

    async def start(self) -> None:
        if self.preload:
            # In the model's own thread, so /health answers at once and the first request
            # queues behind the load instead of loading a second time.
            for model_id, thread in self._threads.items():
                thread.submit(self._preload, model_id)

    def _preload(self, model_id: str) -> None:
        try:
            self.worker.load(model_id)
        except APIError as exc:
            log.error("preload failed: %s", exc.message)

    async def run(self, job: Job) -> list[bytes]:
        stop = threading.Event()
        try:
            return await self._in_model_thread(job, lambda: self.worker.run(job, cancelled=stop.is_set))
        finally:
            stop.set()  # the caller went away (or we are done): skip whatever steps remain

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        loop = asyncio.get_running_loop()
        partials: asyncio.Queue[ImageEvent] = asyncio.Queue()
        stop = threading.Event()

        def emit(event: ImageEvent) -> None:
            loop.call_soon_threadsafe(partials.put_nowait, event)

        images = asyncio.ensure_future(
            self._in_model_thread(job, lambda: self.worker.run(job, on_partial=emit, cancelled=stop.is_set))
        )
        try:
            while not images.done() or not partials.empty():
                next_partial = asyncio.ensure_future(partials.get())
                await asyncio.wait({next_partial, images}, return_when=asyncio.FIRST_COMPLETED)
                if next_partial.done():
                    yield next_partial.result()
                else:
                    next_partial.cancel()
            for index, data in enumerate(images.result()):
                yield ImageEvent(kind="completed", image_index=index, data=data)
        finally:
            stop.set()
            # Abandoned early: the failure (if any) has nobody left to tell.
            images.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _in_model_thread(self, job: Job, work: Callable[[], list[bytes]]) -> list[bytes]:
        thread = self._threads.get(job.model)
        if thread is None:
            raise APIError(404, f"The model '{job.model}' is not served here.", param="model", code="model_not_found")
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, work)
        except APIError:
            raise
        except Cancelled:
            raise APIError(499, "The request was cancelled.", code="cancelled") from None
        except Exception:
            log.exception("%s failed on %s", job.task, job.model)
            raise APIError(
                500,
                f"Model {job.model} failed while making the image; see the server log.",
                code="generation_failed",
                retryable=False,
            ) from None

    async def close(self) -> None:
        for thread in self._threads.values():
            await asyncio.to_thread(thread.shutdown, wait=True, cancel_futures=True)
