"""LocalEngine: Jobs on an in-process Worker, through a bounded queue per model, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pipelines.batching import batch_pixels, next_batch
from pipelines.bridge import EventBridge
from pipelines.contract import errors
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import JobTrace, ModelStatus, current_trace
from pipelines.contract.usage import Usage
from pipelines.model_queue import ModelQueue, Ticket, job_work
from pipelines.pace import prior_for
from pipelines.settings import EngineSettings
from pipelines.worker import Stopped, Worker

log = logging.getLogger("imagegen")

_LOADING_RETRY_SECONDS = 2.0


class LocalEngine:
    """Each model has a bounded queue and one thread: its Jobs run in order (a scheduler holds
    per-run state), compatible generations share a pipeline call, different models run side
    by side, and the event loop stays free for other requests."""

    def __init__(self, worker: Worker, settings: EngineSettings) -> None:
        self.worker = worker
        self.settings = settings
        self._queues: dict[str, ModelQueue] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._draining = False

    async def start(self) -> None:
        self._queues = {model_id: ModelQueue(model_id) for model_id in self.worker.models.specs}
        for model_id, queue in self._queues.items():
            queue.feeder = asyncio.create_task(self._feed(queue))
            if self.settings.preload:
                # In the model's own thread, so /health answers at once and the first request
                # queues behind the load instead of loading a second time.
                queue.thread.submit(self._preload, model_id)

    def _preload(self, model_id: str) -> None:
        try:
            self.worker.models.get(model_id)
        except APIError as exc:
            log.error("preload failed: %s", exc.message)

    async def run(self, job: Job) -> Rendered:
        ticket = self._enqueue(job)
        try:
            return await self._outcome(ticket)
        finally:
            self._drop(ticket)

    def status(self) -> dict[str, ModelStatus]:
        statuses = {}
        for model_id in self.worker.models.specs:
            state, reason = self.worker.models.state(model_id)
            queue = self._queues.get(model_id)
            statuses[model_id] = ModelStatus(
                state=state,
                reason=reason,
                load_seconds=self.worker.models.load_seconds.get(model_id),
                waiting=len(queue.waiting) if queue else 0,
                running=queue.running if queue else 0,
                batches=self.worker.batch_sizes(model_id),
            )
        return statuses

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        bridge = EventBridge(asyncio.get_running_loop())
        ticket = self._enqueue(job, bridge.emit)
        outcome = asyncio.ensure_future(self._outcome(ticket))

        def hand_over(done: asyncio.Future[Rendered]) -> None:
            if done.cancelled():
                return  # abandoned early: nobody is left to tell
            if done.exception() is not None:
                bridge.fail(done.exception())  # type: ignore[arg-type]
            else:
                bridge.finish(done.result())

        outcome.add_done_callback(hand_over)
        try:
            async for event in bridge:
                yield event
        finally:
            self._drop(ticket)
            outcome.cancel()

    def drain(self, seconds: float) -> None:
        self._draining = True
        for model_id, queue in self._queues.items():
            # What can still run: the time left after the running batch, each waiting job at the
            # recent pace for its own pixels x steps, with a fifth kept back for answering. No
            # pace known yet: nothing waiting can be promised.
            left = 0.8 * seconds - (queue.until_a_place_frees() if queue.running_since is not None else 0.0)
            fitting = queue.pace.fitting((job_work(ticket.job) for ticket in queue.waiting), left)
            refused = list(queue.waiting)[fitting:]
            for ticket in refused:
                queue.waiting.remove(ticket)
                if not ticket.future.done():
                    ticket.future.set_exception(errors.shutting_down())
            log.info(
                "shutting down within %.0f s: %s keeps %d waiting, refused %d",
                seconds,
                model_id,
                len(queue.waiting),
                len(refused),
            )

    def _enqueue(self, job: Job, on_partial: Callable[[ImageEvent], None] | None = None) -> Ticket:
        queue = self._queues.get(job.model)
        if queue is None:
            raise errors.model_not_found(job.model)
        if self._draining:
            raise errors.shutting_down()
        if len(queue.waiting) >= self.settings.max_queue:
            if job.model not in self.worker.models.loaded():
                # A first load has no estimate: a few seconds, asked again until it is done.
                raise errors.model_loading(job.model, len(queue.waiting), _LOADING_RETRY_SECONDS)
            raise errors.queue_full(job.model, len(queue.waiting), queue.retry_after(self.settings.max_batch_images))
        # The request's trace, if the web side set one (the same object: the engine fills it in).
        ticket = Ticket(
            job=job,
            future=asyncio.get_running_loop().create_future(),
            on_partial=on_partial,
            trace=current_trace.get() or JobTrace(),
        )
        queue.waiting.append(ticket)
        queue.arrived.set()
        return ticket

    async def _outcome(self, ticket: Ticket) -> Rendered:
        """The ticket's images; a 503 if it waited past the queue timeout without starting."""
        done, _ = await asyncio.wait({ticket.future}, timeout=self.settings.queue_timeout_seconds)
        if not done and not ticket.started:
            raise errors.queue_timeout(ticket.job.model, self.settings.queue_timeout_seconds)
        return await asyncio.shield(ticket.future)

    def _drop(self, ticket: Ticket) -> None:
        """The caller is done or gone: free its place, or skip its remaining steps."""
        ticket.stop.set()
        queue = self._queues.get(ticket.job.model)
        if queue is not None and not ticket.started and ticket in queue.waiting:
            queue.waiting.remove(ticket)

    async def _feed(self, queue: ModelQueue) -> None:
        while True:
            if not queue.waiting:
                queue.arrived.clear()
                await queue.arrived.wait()
            if queue.pace.prior_per_work is None:
                # The device is first asked for here, not at start, and off the event loop: "auto"
                # imports torch (a second or more), and /health answers meanwhile.
                device = await asyncio.to_thread(lambda: str(self.worker.models.device))
                queue.pace.prior_per_work = prior_for(device)
            batch = await next_batch(
                queue.waiting,
                queue.arrived,
                max_images=self.settings.max_batch_images,
                max_pixels=self.settings.max_batch_pixels or batch_pixels(str(self.worker.models.device)),
                wait_seconds=self.settings.batch_wait_ms / 1000,
            )
            if not batch:
                continue
            for ticket in batch:
                ticket.started = True
                ticket.trace.batch_images = sum(each.job.n for each in batch)
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    queue.thread, batch[0].context.run, self._run, queue, batch
                )
            except asyncio.CancelledError:  # the engine is closing
                for ticket in batch:
                    ticket.future.cancel()
                raise
            except Exception as exc:
                _fail(batch, exc)
                continue
            # Encoded off the model's thread: its next batch starts while this one encodes.
            delivery = asyncio.create_task(self._deliver(batch, results))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, batch: list[Ticket], pictures: list[tuple[list[Any], Usage]]) -> None:
        jobs = [ticket.job for ticket in batch]
        try:
            results = await asyncio.to_thread(batch[0].context.run, self.worker.encode, jobs, pictures)
        except Exception as exc:
            return _fail(batch, exc)
        for ticket, images in zip(batch, results, strict=True):
            if not ticket.future.done():
                ticket.future.set_result(images)

    def _run(self, queue: ModelQueue, batch: list[Ticket]) -> list[tuple[list[Any], Usage]]:
        """In the model's thread. Stops early only when every caller in the batch has gone."""

        def cancelled() -> bool:
            return all(ticket.stop.is_set() for ticket in batch)

        def on_step(done: int, steps: int) -> None:  # a batch's jobs share their steps
            for ticket in batch:
                ticket.trace.steps_done = done  # what an async job's progress reads
                if ticket.trace.on_step is not None:
                    ticket.trace.on_step(done, steps)

        lead = batch[0].job
        self.worker.models.get(lead.model)  # a load is not a batch's run time
        queue.running_since = began = time.monotonic()
        queue.running, queue.running_work = len(batch), sum(job_work(ticket.job) for ticket in batch)
        for ticket in batch:  # waiting for the model, its load included: until its pipeline call begins
            ticket.trace.queue_seconds = began - ticket.enqueued_at
        try:
            if len(batch) > 1:
                log.info("batching %d requests (%d images) on %s", len(batch), sum(t.job.n for t in batch), lead.model)
            on_partial = batch[0].on_partial if len(batch) == 1 else None  # previews are never batched
            jobs = [ticket.job for ticket in batch]
            results = self.worker.render(jobs, on_partial=on_partial, cancelled=cancelled, on_step=on_step)
        except BaseException:
            queue.running_since = None  # a stopped or failed run says nothing about the next one's length
            raise
        finally:
            queue.running = 0
            for ticket in batch:
                ticket.trace.run_seconds = time.monotonic() - began
        queue.running_since = None
        queue.pace.ran(queue.running_work, time.monotonic() - began)
        return results

    async def close(self) -> None:
        feeders = [queue.feeder for queue in self._queues.values() if queue.feeder is not None]
        for feeder in feeders:
            feeder.cancel()
        await asyncio.gather(*feeders, return_exceptions=True)
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        for queue in self._queues.values():
            for ticket in queue.waiting:
                if not ticket.future.done():
                    ticket.future.set_exception(errors.shutting_down())
            await asyncio.to_thread(queue.thread.shutdown, wait=True, cancel_futures=True)


def _fail(batch: list[Ticket], exc: Exception) -> None:
    """Every caller in the batch must hear of it."""
    for ticket in batch:
        if not ticket.future.done():
            ticket.future.set_exception(_public(exc, ticket.job))


def _public(exc: BaseException, job: Job) -> BaseException:
    """What the caller hears: our APIErrors as they are; anything else a 500 that says not to retry."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, Stopped):
        return errors.cancelled()
    log.error("%s failed on %s", job.task, job.model, exc_info=exc)
    return errors.generation_failed(job.model)
