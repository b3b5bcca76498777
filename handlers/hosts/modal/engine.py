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
waiting without an answer (the caller hung up, the request was cancelled, the deadline passed,
an error here), it cancels that call. Where there is no call id yet (a stream before its first
item, a spawn still in flight), the cancellation is recorded under the call's cancel key, made
here before anything is sent, where the GPU side looks before and while it runs
(`cancellations.py`). The GPU methods are async, so Modal cancels just that input's task
(`_container_entrypoint.py`: a sync method under `@modal.concurrent` would take the whole
container down), and the Job's deadline is the backstop the Worker checks at every step.

How long a request may take: Modal answers a web request still running at 150 s with a 303 to
a result URL that blocks until the answer exists, up to 20 times (Modal's guide, "Request
timeouts"). Both official SDKs follow it with a GET: the Python client sets httpx's
`follow_redirects=True` (`openai/_base_client.py`), and httpx turns a 303 POST into a bodiless
GET (`httpx/_client.py` `_redirect_method`, `_redirect_stream`) up to 20 times; the JS client
calls `fetch` without a `redirect` option (`openai/src/client.ts` `fetchWithTimeout`), and
fetch's default is to follow. Their default timeout is 600 s, so the deadline is a little
under that. A stream is different: its response starts with its first event, and what Modal's
result URL does with a streamed body is not documented, so a stream's first event must come
within the web window.

`modal` is imported lazily: it runs in the web front, which must import on a laptop that has no
Modal installed, and it needs no torch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.steps import RemoteSteps
from pipelines.contract import errors
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import ModelStatus, current_trace

log = logging.getLogger("imagegen")

# A synchronous request's bound: a little under the SDKs' 600 s default timeout, so the caller gets
# our answer (a retryable 503 that points at async jobs) rather than its own timeout.
DEFAULT_DEADLINE_SECONDS = 570.0
# Modal's web window, less a margin: a stream's first event (its response's start) must come by then.
STREAM_START_SECONDS = 140.0
# Said with every answer by the deadline: where work longer than a request goes.
LONG_WORK_HINT = "For longer work send `Prefer: respond-async` and poll the job at /v1/images/jobs/{id}."


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
    (`modal.FunctionCall.from_id`; a stand-in in tests); `cancellations` is where a call without
    an id yet is cancelled.
    """

    def __init__(
        self,
        gpu_classes: Mapping[str, Any],
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        retry_after_seconds: int = 10,
        function_call: Callable[[str], Any] = _function_call,
        cancellations: Cancellations | None = None,
        stream_start_seconds: float = STREAM_START_SECONDS,
    ) -> None:
        self.gpu_classes = dict(gpu_classes)
        self.deadline_seconds = deadline_seconds
        self.retry_after_seconds = retry_after_seconds
        self.function_call = function_call
        self.cancellations = cancellations or Cancellations(None)
        # A watched run's steps come through the cancellations' Dict too (steps.py).
        self.steps = RemoteSteps(self.cancellations.store, poll_seconds=self.cancellations.poll_seconds)
        self.stream_start_seconds = stream_start_seconds
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
        key = uuid.uuid4().hex  # before anything is sent: a cancel can name the call from now on
        began = time.monotonic()
        self._in_flight[job.model] += 1
        call, answered = None, False
        try:
            trace = current_trace.get()
            async with asyncio.timeout(_left(job)), self.steps.following(key):
                call = await pool.run.spawn.aio(job, key, trace is not None and trace.watched)
                result = await call.get.aio()
            answered = True
            return result
        except APIError as exc:
            answered = True  # the GPU's own answer: the call is over
            raise exc from None
        except Exception as exc:
            raise self._api_error(exc, job) from None
        finally:  # also when the caller hung up (this task was cancelled), even mid-spawn
            self._in_flight[job.model] -= 1
            if not answered:
                self._cancel(job, key, call)
            if (trace := current_trace.get()) is not None:
                trace.run_seconds = time.monotonic() - began  # queueing on Modal's side included

    async def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        pool = self._pool(job.model)
        job = self._with_deadline(job)
        key = uuid.uuid4().hex
        events = pool.stream.remote_gen.aio(job, key)
        assert job.deadline is not None
        first_within = min(self.deadline_seconds, self.stream_start_seconds)  # from the request's arrival
        start_by = job.deadline - self.deadline_seconds + first_within
        call_id: str | None = None
        started = finished = False
        try:
            while True:
                try:
                    # Every wait is bounded by the Job's deadline: the first event also by the web
                    # window (the response starts only with it), and every later one (a stall).
                    wait = _left(job) if started else max(0.0, start_by - time.time())
                    async with asyncio.timeout(wait):
                        item = await anext(events)
                except StopAsyncIteration:
                    finished = True
                    return
                except APIError:
                    finished = True
                    raise
                except Exception as exc:
                    if not started and isinstance(exc, TimeoutError):
                        raise self._busy(job, first_within) from None
                    raise self._api_error(exc, job) from None
                if isinstance(item, StreamStarted):
                    call_id = item.call_id
                    continue
                started = True
                yield item
        finally:
            if not finished:
                self._cancel(job, key, None if call_id is None else self.function_call(call_id))
            await _close_quietly(events.aclose)

    def _cancel(self, job: Job, key: str, call: Any | None) -> None:
        """Cancel the remote work in the background: recorded under its key (found by the GPU side
        before it starts, and while it runs), then its call cancelled where there is one. The
        caller's answer (a 503, or nothing for one who hung up) does not wait for it, and a
        caller's own cancellation cannot stop it."""

        async def cancel() -> None:
            await self.cancellations.record(key)
            if call is None:
                return
            try:
                await call.cancel.aio()
                log.info("cancelled %s on %s: nobody waits for it", job.task, job.model)
            except Exception:  # the record and the Job's deadline still stop it on the GPU
                log.warning("cancelling %s on %s failed; its deadline will stop it", job.task, job.model, exc_info=True)

        task = asyncio.get_running_loop().create_task(cancel())
        self._cancelling.add(task)
        task.add_done_callback(self._cancelling.discard)

    def _busy(self, job: Job, seconds: float) -> APIError:
        log.warning("%s on %s: no answer within %.0f s", job.task, job.model, seconds)
        # Mostly a cold start or a saturated pool: by the retry a container is warm or free.
        return errors.model_busy(job.model, seconds, self.retry_after_seconds, hint=LONG_WORK_HINT)

    def _api_error(self, exc: Exception, job: Job) -> APIError:
        """The one place a failure on the way to or from the GPU pool becomes a client's error."""
        if isinstance(exc, TimeoutError):  # asyncio's, i.e. our deadline (Modal's timeouts are modal.Error)
            return self._busy(job, self.deadline_seconds)
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
