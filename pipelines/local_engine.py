"""LocalEngine: Jobs on an in-process Worker, through a bounded queue per model, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from handlers.errors import APIError
from handlers.job import ImageEvent, Job
from pipelines.worker import Cancelled, Worker, batch_key

log = logging.getLogger("imagegen")


@dataclass(frozen=True)
class QueueLimits:
    max_queue: int = 32
    queue_timeout_seconds: float = 120.0
    max_batch_images: int = 8
    batch_wait_ms: float = 10.0


@dataclass(eq=False)
class _Ticket:
    """A Job waiting for (or holding) its model: the caller awaits `future`."""

    job: Job
    future: asyncio.Future[list[bytes]]
    on_partial: Callable[[ImageEvent], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    started: bool = False


class _ModelQueue:
    """One model's waiting tickets and the task that feeds them, in batches, to its thread."""

    def __init__(self, model_id: str) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imagegen-{model_id}")
        self.waiting: deque[_Ticket] = deque()
        self.arrived = asyncio.Event()
        self.seconds_per_job = 1.0  # a running estimate, for Retry-After
        self.feeder: asyncio.Task[None] | None = None


class LocalEngine:
    """Each model has a bounded queue and one thread: its Jobs run in order (a scheduler holds
    per-run state), compatible generations share a pipeline call, different models run side
    by side, and the event loop stays free for other requests."""

    def __init__(self, worker: Worker, preload: bool = False, limits: QueueLimits | None = None) -> None:
        self.worker = worker
        self.preload = preload
        self.limits = limits or QueueLimits()
        self._queues: dict[str, _ModelQueue] = {}

    async def start(self) -> None:
        self._queues = {model_id: _ModelQueue(model_id) for model_id in self.worker.specs}
        for model_id, queue in self._queues.items():
            queue.feeder = asyncio.create_task(self._feed(queue))
            if self.preload:
                # In the model's own thread, so /health answers at once and the first request
                # queues behind the load instead of loading a second time.
                queue.thread.submit(self._preload, model_id)

    def _preload(self, model_id: str) -> None:
        try:
            self.worker.load(model_id)
        except APIError as exc:
            log.error("preload failed: %s", exc.message)

    async def run(self, job: Job) -> list[bytes]:
        ticket = self._enqueue(job)
        try:
            return await self._outcome(ticket)
        finally:
            self._drop(ticket)

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        loop = asyncio.get_running_loop()
        partials: asyncio.Queue[ImageEvent] = asyncio.Queue()
        ticket = self._enqueue(job, lambda event: loop.call_soon_threadsafe(partials.put_nowait, event))
        outcome = asyncio.ensure_future(self._outcome(ticket))
        try:
            while not outcome.done() or not partials.empty():
                next_partial = asyncio.ensure_future(partials.get())
                await asyncio.wait({next_partial, outcome}, return_when=asyncio.FIRST_COMPLETED)
                if next_partial.done():
                    yield next_partial.result()
                else:
                    next_partial.cancel()
            for index, data in enumerate(outcome.result()):
                yield ImageEvent(kind="completed", image_index=index, data=data)
        finally:
            self._drop(ticket)
            outcome.cancel()
            # Abandoned early: a failure (if any) has nobody left to tell.
            outcome.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _enqueue(self, job: Job, on_partial: Callable[[ImageEvent], None] | None = None) -> _Ticket:
        queue = self._queues.get(job.model)
        if queue is None:
            raise APIError(404, f"The model '{job.model}' is not served here.", param="model", code="model_not_found")
        if len(queue.waiting) >= self.limits.max_queue:
            retry = str(min(60, max(1, math.ceil(queue.seconds_per_job * len(queue.waiting)))))
            if job.model not in self.worker.loaded():
                raise APIError(503, f"Model {job.model} is loading and {len(queue.waiting)} requests are waiting "
                               "for it; retry shortly.", code="model_loading", retryable=True,
                               headers={"retry-after": retry})
            raise APIError(429, f"Model {job.model} is busy: {len(queue.waiting)} requests are already waiting. "
                           "Retry shortly.", code="queue_full", retryable=True, headers={"retry-after": retry})
        ticket = _Ticket(job=job, future=asyncio.get_running_loop().create_future(), on_partial=on_partial)
        queue.waiting.append(ticket)
        queue.arrived.set()
        return ticket

    async def _outcome(self, ticket: _Ticket) -> list[bytes]:
        """The ticket's images; a 503 if it waited past the queue timeout without starting."""
        done, _ = await asyncio.wait({ticket.future}, timeout=self.limits.queue_timeout_seconds)
        if not done and not ticket.started:
            raise APIError(503, f"Model {ticket.job.model} was too busy to start this request within "
                           f"{self.limits.queue_timeout_seconds:g} s; retry later.", code="queue_timeout",
                           retryable=True, headers={"retry-after": "10"})
        return await asyncio.shield(ticket.future)

    def _drop(self, ticket: _Ticket) -> None:
        """The caller is done or gone: free its place, or skip its remaining steps."""
        ticket.stop.set()
        queue = self._queues.get(ticket.job.model)
        if queue is not None and not ticket.started and ticket in queue.waiting:
            queue.waiting.remove(ticket)

    async def _feed(self, queue: _ModelQueue) -> None:
        while True:
            if not queue.waiting:
                queue.arrived.clear()
                await queue.arrived.wait()
            batch = await self._next_batch(queue)
            if not batch:
                continue
            for ticket in batch:
                ticket.started = True
            began = time.monotonic()
            try:
                results = await asyncio.get_running_loop().run_in_executor(queue.thread, self._run, batch)
            except asyncio.CancelledError:  # the engine is closing
                for ticket in batch:
                    ticket.future.cancel()
                raise
            except Exception as exc:  # every caller in the batch must hear of it
                for ticket in batch:
                    if not ticket.future.done():
                        ticket.future.set_exception(_public(exc, ticket.job))
                continue
            finally:
                queue.seconds_per_job = 0.8 * queue.seconds_per_job + 0.2 * (time.monotonic() - began)
            for ticket, images in zip(batch, results, strict=True):
                if not ticket.future.done():
                    ticket.future.set_result(images)

    async def _next_batch(self, queue: _ModelQueue) -> list[_Ticket]:
        """The first live ticket, plus compatible ones (waiting briefly for more) up to the limit."""
        while queue.waiting and queue.waiting[0].stop.is_set():
            queue.waiting.popleft()
        if not queue.waiting:
            return []
        batch = [queue.waiting.popleft()]
        key = batch_key(batch[0].job)
        if key is None:
            return batch
        deadline = time.monotonic() + self.limits.batch_wait_ms / 1000
        while sum(t.job.n for t in batch) < self.limits.max_batch_images:
            room = self.limits.max_batch_images - sum(t.job.n for t in batch)
            fits = [t for t in queue.waiting if not t.stop.is_set() and batch_key(t.job) == key and t.job.n <= room]
            if fits:
                queue.waiting.remove(fits[0])
                batch.append(fits[0])
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            queue.arrived.clear()
            try:
                await asyncio.wait_for(queue.arrived.wait(), remaining)
            except TimeoutError:
                break
        return batch

    def _run(self, batch: list[_Ticket]) -> list[list[bytes]]:
        """In the model's thread. Stops early only when every caller in the batch has gone."""

        def cancelled() -> bool:
            return all(ticket.stop.is_set() for ticket in batch)

        if len(batch) == 1:
            ticket = batch[0]
            return [self.worker.run(ticket.job, on_partial=ticket.on_partial, cancelled=cancelled)]
        log.info("batching %d requests (%d images) on %s", len(batch), sum(t.job.n for t in batch), batch[0].job.model)
        return self.worker.run_batch([ticket.job for ticket in batch], cancelled=cancelled)

    async def close(self) -> None:
        feeders = [queue.feeder for queue in self._queues.values() if queue.feeder is not None]
        for feeder in feeders:
            feeder.cancel()
        await asyncio.gather(*feeders, return_exceptions=True)
        for queue in self._queues.values():
            for ticket in queue.waiting:
                if not ticket.future.done():
                    ticket.future.set_exception(APIError(503, "The server is shutting down.", code="shutting_down",
                                                         retryable=True, headers={"retry-after": "5"}))
            await asyncio.to_thread(queue.thread.shutdown, wait=True, cancel_futures=True)


def _public(exc: BaseException, job: Job) -> BaseException:
    """What the caller hears: our APIErrors as they are; anything else a 500 that says not to retry."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, Cancelled):
        return APIError(499, "The request was cancelled.", code="cancelled")
    log.error("%s failed on %s", job.task, job.model, exc_info=exc)
    return APIError(500, f"Model {job.model} failed while making the image; see the server log.",
                    code="generation_failed", retryable=False)
