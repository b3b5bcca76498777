"""ModalEngine: runs Jobs on Modal GPU classes, one class (one autoscaling pool) per model.

The web front (a CPU container without torch) spawns `run` on the model's class and waits for
the call, or reads its `stream` generator. Everything that can go wrong on the way — the pool is
cold or saturated, Modal's control plane hiccups, the remote job fails in a way that cannot be
unpickled here — leaves as one `APIError`, by the Job's deadline, with an honest
`x-should-retry`.

Work nobody waits for is cancelled where it runs. In modal 1.6 leaving a `.remote.aio()` or a
`.remote_gen.aio()` only stops the waiting here; the one thing that stops the remote input is
`FunctionCall.cancel()` (`modal/_functions.py`). So `run` is spawned (a FunctionCall at once),
and `stream`'s first item is its own call id (`StreamStarted`); whenever the front stops
waiting without an answer (the caller hung up, the deadline passed, `model_busy`), it cancels
that call. The GPU methods are async, so Modal cancels just that input's task
(`_container_entrypoint.py`: a sync method under `@modal.concurrent` would take the whole
container down), and the Job's deadline is the backstop the Worker checks at every step.

`modal` is imported lazily: it runs in the web front, which must import on a laptop that has no
Modal installed, and it needs no torch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pipelines.contract import errors
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import ModelStatus, current_trace

log = logging.getLogger("imagegen")

# Modal answers a web request that runs past 150 s with a 303 redirect the SDKs do not expect.
# Give up a little before that, so the caller always gets an answer it understands.
DEFAULT_DEADLINE_SECONDS = 140.0


@dataclasses.dataclass(frozen=True)
class StreamStarted:
    """The first item of a GPU class's `stream`: the id of its function call, so the front can
    cancel it (a generator cannot be spawned, so the front has no FunctionCall otherwise)."""

    call_id: str | None


def _function_call(call_id: str) -> Any:
    import modal

    return modal.FunctionCall.from_id(call_id)


class ModalEngine:
    """Engine over Modal classes with an async `run(job)` and an async generator `stream(job)`.

    `gpu_classes` maps each served model to its class, as the web container sees it (calling it
    gives the instance whose methods are spawned); `function_call` finds a FunctionCall by id
    (`modal.FunctionCall.from_id`; a stand-in in tests).
    """

    def __init__(
        self,
        gpu_classes: Mapping[str, Any],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        retry_after_seconds: int = 10,
        function_call: Callable[[str], Any] = _function_call,
    ) -> None:
        self.gpu_classes = dict(gpu_classes)
        self.deadline_seconds = deadline_seconds
        self.retry_after_seconds = retry_after_seconds
        self.function_call = function_call
        self._pools: dict[str, Any] = {}
        self._draining = False
        self._in_flight: dict[str, int] = dict.fromkeys(self.gpu_classes, 0)
        self._cancelling: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Nothing to start: the pools scale from zero (or are kept warm) on Modal's side."""

    def status(self) -> dict[str, ModelStatus]:
        """Nothing is loaded here: each model is a pool on Modal whose containers start on demand."""
        return {model_id: ModelStatus(state="remote", running=count) for model_id, count in self._in_flight.items()}

    def drain(self, seconds: float) -> None:
        """Nothing waits here (the GPU pools queue on Modal's side): in-flight calls end by their
        deadline, so only new jobs are refused."""
        self._draining = True

    async def close(self) -> None:
        """Let the cancellations already sent arrive (briefly: Modal may be unreachable)."""
        if self._cancelling:
            await asyncio.wait(self._cancelling, timeout=5)

    def _pool(self, model_id: str) -> Any:
        if self._draining:
            raise errors.shutting_down()
        if model_id not in self.gpu_classes:
            raise errors.model_not_found(model_id)
        if model_id not in self._pools:
            # Lazy on Modal's side too: nothing reaches the control plane until the first call.
            self._pools[model_id] = self.gpu_classes[model_id]()
        return self._pools[model_id]

    def _with_deadline(self, job: Job) -> Job:
        """The Job carrying its deadline, counted from when the request arrived here. None left
        (a long upload): busy at once, and nothing is sent to a GPU that nobody would wait for."""
        trace = current_trace.get()
        received = trace.received_at if trace is not None else time.time()
        job = dataclasses.replace(job, deadline=received + self.deadline_seconds)
        if _left(job) <= 0:
            raise self._api_error(TimeoutError(), job)
        return job

    async def run(self, job: Job) -> Rendered:
        pool = self._pool(job.model)
        job = self._with_deadline(job)
        began = time.monotonic()
        self._in_flight[job.model] += 1
        call = None
        try:
            async with asyncio.timeout(_left(job)):
                call = await pool.run.spawn.aio(job)
                result = await call.get.aio()
            call = None  # answered: nothing left to cancel
            return result
        except APIError as exc:
            call = None  # the GPU's own answer: the call is over
            raise exc from None
        except Exception as exc:
            raise self._api_error(exc, job) from None
        finally:  # also when the caller hung up (this task was cancelled)
            self._in_flight[job.model] -= 1
            if call is not None:
                self._cancel(call, job)
            if (trace := current_trace.get()) is not None:
                trace.run_seconds = time.monotonic() - began  # queueing on Modal's side included

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        pool = self._pool(job.model)
        job = self._with_deadline(job)
        events = pool.stream.remote_gen.aio(job)
        call_id: str | None = None
        finished = False
        try:
            while True:
                try:
                    # Every wait is bounded by the Job's deadline: the first event (the response
                    # starts only with it, and Modal's web limit counts until then), and every
                    # later one (a stalled stream).
                    async with asyncio.timeout(_left(job)):
                        item = await anext(events)
                except StopAsyncIteration:
                    finished = True
                    return
                except APIError:
                    finished = True
                    raise
                except Exception as exc:
                    raise self._api_error(exc, job) from None
                if isinstance(item, StreamStarted):
                    call_id = item.call_id
                    continue
                yield item
        finally:
            if not finished and call_id is not None:
                self._cancel(self.function_call(call_id), job)
            await _close_quietly(events.aclose)

    def _cancel(self, call: Any, job: Job) -> None:
        """Cancel the remote call in the background: the caller's answer (a 503, or nothing for
        one who hung up) does not wait for it, and a caller's own cancellation cannot stop it."""

        async def cancel() -> None:
            try:
                await call.cancel.aio()
                log.info("cancelled %s on %s: nobody waits for it", job.task, job.model)
            except Exception:  # the Job's deadline still stops it on the GPU
                log.warning("cancelling %s on %s failed; its deadline will stop it", job.task, job.model, exc_info=True)

        task = asyncio.get_running_loop().create_task(cancel())
        self._cancelling.add(task)
        task.add_done_callback(self._cancelling.discard)

    def _api_error(self, exc: Exception, job: Job) -> APIError:
        """The one place a failure on the way to or from the GPU pool becomes a client's error."""
        if isinstance(exc, TimeoutError):  # asyncio's, i.e. our deadline (Modal's timeouts are modal.Error)
            log.warning("%s on %s: no answer within %.0f s", job.task, job.model, self.deadline_seconds)
            # Mostly a cold start or a saturated pool: by the retry a container is warm or free.
            return errors.model_busy(job.model, self.deadline_seconds, self.retry_after_seconds)
        kind = _modal_kind(exc)
        if kind == "timeout":
            log.warning("%s on %s ran past the GPU function's timeout: %s", job.task, job.model, exc)
            return errors.generation_timeout(job.model)
        if kind == "unavailable":
            log.warning("%s on %s: Modal unavailable: %r", job.task, job.model, exc)
            return errors.backend_unavailable(job.model, self.retry_after_seconds)
        log.error("%s on %s failed remotely: %r", job.task, job.model, exc)
        return errors.generation_failed(job.model, see="the GPU function's log")


def _left(job: Job) -> float:
    """Seconds until the Job's deadline (none left: the wait times out at once)."""
    assert job.deadline is not None
    return max(0.0, job.deadline - time.time())


def _modal_kind(exc: BaseException) -> str | None:
    """ "timeout" or "unavailable" for Modal's exceptions that say so; None for any other failure."""
    try:
        from modal import exception as modal_errors
    except ImportError:  # no Modal here, so nothing came from it
        return None
    if isinstance(exc, modal_errors.FunctionTimeoutError):
        return "timeout"
    # Infrastructure trouble: a preempted or crashed container, the control plane briefly away.
    unavailable = (
        modal_errors.InternalFailure,
        modal_errors.ConnectionError,
        modal_errors.ServiceError,
        modal_errors.InternalError,
        modal_errors.ResourceExhaustedError,
        modal_errors.ClientClosed,
    )
    return "unavailable" if isinstance(exc, unavailable) else None


async def _close_quietly(close: Callable[[], Any]) -> None:
    try:
        await close()
    except Exception:  # the stream's outcome is decided; a failed close must not replace it
        log.debug("closing a remote stream failed", exc_info=True)
