"""ModalEngine: runs Jobs on a Modal GPU class, one autoscaling pool per model.

The web front (a CPU container without torch) calls `ImageWorker(model_id=…).run.remote.aio(job)`
and `.stream.remote_gen.aio(job)`. Everything that can go wrong on the way — the GPU pool is
cold or saturated, Modal's control plane hiccups, the remote job fails in a way that cannot be
unpickled here — leaves as one `APIError`, within a deadline, with an honest `x-should-retry`.

`modal` is imported lazily: it runs in the web front, which must import on a laptop that has no
Modal installed, and it needs no torch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pipelines.contract import errors
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job
from pipelines.contract.status import ModelStatus, current_trace

log = logging.getLogger("imagegen")

# Modal answers a web request that runs past 150 s with a 303 redirect the SDKs do not expect.
# Give up a little before that, so the caller always gets an answer it understands.
DEFAULT_DEADLINE_SECONDS = 140.0


class ModalEngine:
    """Engine over a Modal class with `run(job)` and a generator `stream(job)` method.

    `worker_cls` is the class as the web container sees it: `with_options(gpu=…)` gives the
    variant for a GPU type, and calling it with `model_id=` gives that model's pool.
    """

    def __init__(
        self,
        worker_cls: Any,
        gpus: Mapping[str, str],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        retry_after_seconds: int = 10,
    ) -> None:
        self.worker_cls = worker_cls
        self.gpus = dict(gpus)
        self.deadline_seconds = deadline_seconds
        self.retry_after_seconds = retry_after_seconds
        self._pools: dict[str, Any] = {}
        self._draining = False
        self._in_flight: dict[str, int] = dict.fromkeys(self.gpus, 0)

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
        """Nothing to free: in-flight calls end with their requests."""

    def _pool(self, model_id: str) -> Any:
        if self._draining:
            raise errors.shutting_down()
        if model_id not in self.gpus:
            raise errors.model_not_found(model_id)
        if model_id not in self._pools:
            # Lazy on Modal's side too: nothing reaches the control plane until the first call.
            self._pools[model_id] = self.worker_cls.with_options(gpu=self.gpus[model_id])(model_id=model_id)
        return self._pools[model_id]

    async def run(self, job: Job) -> list[bytes]:
        pool = self._pool(job.model)
        began = time.monotonic()
        self._in_flight[job.model] += 1
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await pool.run.remote.aio(job)
        except APIError:
            raise
        except Exception as exc:
            raise self._api_error(exc, job) from None
        finally:
            self._in_flight[job.model] -= 1
            if (trace := current_trace.get()) is not None:
                trace.run_seconds = time.monotonic() - began  # queueing on Modal's side included

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        pool = self._pool(job.model)
        events = pool.stream.remote_gen.aio(job)
        try:
            while True:
                try:
                    # Each wait is bounded: the first event (the response starts only with it, and
                    # Modal's web limit counts until then), and every later one (a stalled stream).
                    async with asyncio.timeout(self.deadline_seconds):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except APIError:
                    raise
                except Exception as exc:
                    raise self._api_error(exc, job) from None
                yield event
        finally:
            # Closing the remote generator is how a caller that went away stops the GPU's steps.
            await _close_quietly(events.aclose)

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


def _modal_kind(exc: BaseException) -> str | None:
    """"timeout" or "unavailable" for Modal's exceptions that say so; None for any other failure."""
    try:
        from modal import exception as modal_errors
    except ImportError:  # no Modal here, so nothing came from it
        return None
    if isinstance(exc, modal_errors.FunctionTimeoutError):
        return "timeout"
    # Infrastructure trouble: a preempted or crashed container, the control plane briefly away.
    unavailable = (modal_errors.InternalFailure, modal_errors.ConnectionError, modal_errors.ServiceError,
                   modal_errors.InternalError, modal_errors.ResourceExhaustedError, modal_errors.ClientClosed)
    return "unavailable" if isinstance(exc, unavailable) else None


async def _close_quietly(close: Callable[[], Any]) -> None:
    try:
        await close()
    except Exception:  # the stream's outcome is decided; a failed close must not replace it
        log.debug("closing a remote stream failed", exc_info=True)
