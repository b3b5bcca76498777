"""ModalEngine against Modal's control plane, faked at its boundary as modal 1.6.4 behaves
(tests/modal_control_plane.py): every failure is an APIError, in time, with an honest
x-should-retry; and work nobody waits for any more is cancelled where it runs.

The GPU class here is scripted (it hangs, raises, or streams what a test says); its methods are
async, as the real one's are, and run in a container the fake cancels as Modal does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import modal
import pytest
from modal import exception as modal_errors

from handlers.hosts.modal.engine import ModalEngine, StreamStarted
from handlers.http_errors import http_headers, http_status
from pipelines.contract import errors
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import JobTrace, current_trace
from pipelines.contract.usage import Usage
from tests.conftest import ROOT
from tests.jobs import small_job
from tests.modal_control_plane import Deployment

# How long a test waits for something the fake's container does before calling it a failure: a
# bound, never a pause (each wait ends at the event it waits for), generous for a loaded machine.
WAIT = 30.0

JOB = small_job()
RENDERED = Rendered([b"image"], Usage(text_tokens=1, output_tokens=16))


class Scripted:
    """A GPU class whose work hangs, raises, or streams what the test says; it notes what it got
    and whether its work was cancelled."""

    def __init__(
        self, *, error: BaseException | None = None, hang: bool = False, events: list[ImageEvent] | None = None
    ) -> None:
        self.error = error
        self.hang = hang
        self.events = events or []
        self.jobs: list[Job] = []
        self.stopped = threading.Event()

    async def _work(self, job: Job) -> None:
        self.jobs.append(job)
        try:
            if self.hang:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopped.set()
            raise
        if self.error:
            raise self.error

    @modal.method()
    async def run(self, job: Job, cancel_key: str | None = None, report_steps: bool = False) -> Rendered:
        await self._work(job)
        return RENDERED

    @modal.method()
    async def stream(self, job: Job, cancel_key: str | None = None) -> AsyncIterator[Any]:
        yield StreamStarted(modal.current_function_call_id())
        for event in self.events:
            yield event
        await self._work(job)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    deployment = Deployment(lambda model_id: Scripted())
    yield deployment
    deployment.close()


def engine(deployment: Deployment, scripted: Scripted, deadline: float = 5.0) -> ModalEngine:
    """A ModalEngine over a warm pool of one: the container has entered before a deadline starts
    counting, so no deadline here races the container's start."""
    deployment.make_instance = lambda model_id: scripted
    gpu_class = deployment.gpu_class("tiny-sd")
    gpu_class()  # the container starts
    deployment.containers["tiny-sd"].entered.result(timeout=WAIT)
    return ModalEngine({"tiny-sd": gpu_class}, deadline_seconds=deadline, function_call=deployment.plane.from_id)


async def settled(engine: ModalEngine, outcome: Any) -> Any:
    """`outcome`'s result or APIError, once the cancellations it sent have gone out."""
    try:
        return await outcome
    except APIError as exc:
        return exc
    finally:
        await engine.close()


def run(deployment: Deployment, scripted: Scripted, deadline: float = 5.0) -> APIError:
    modal_engine = engine(deployment, scripted, deadline)
    failure = asyncio.run(settled(modal_engine, modal_engine.run(JOB)))
    assert isinstance(failure, APIError), failure
    return failure


@pytest.mark.parametrize(
    ("error", "status", "code", "retry"),
    [
        (modal_errors.FunctionTimeoutError("Function timed out"), 504, "generation_timeout", "false"),
        (modal_errors.InternalFailure("container preempted"), 503, "backend_unavailable", "true"),
        (modal_errors.ConnectionError("control plane away"), 503, "backend_unavailable", "true"),
        (modal_errors.ExecutionError("Could not deserialize remote exception"), 500, "generation_failed", "false"),
        (modal_errors.RemoteError("RuntimeError('CUDA out of memory')"), 500, "generation_failed", "false"),
        (ValueError("anything else"), 500, "generation_failed", "false"),
    ],
)
def test_modal_failures_become_api_errors(
    deployment: Deployment, error: BaseException, status: int, code: str, retry: str
) -> None:
    failure = run(deployment, Scripted(error=error))
    assert (http_status(failure), failure.code, http_headers(failure)["x-should-retry"]) == (status, code, retry)
    assert "tiny-sd" in failure.message and "Traceback" not in failure.message
    if retry == "true":
        assert int(http_headers(failure)["retry-after"]) > 0


def test_an_api_error_from_the_gpu_passes_through_unchanged(deployment: Deployment) -> None:
    remote = errors.invalid("mask", "bad mask", code="invalid_mask")
    arrived = run(deployment, Scripted(error=remote))  # it crossed the wire: a copy, not the same object
    assert (http_status(arrived), arrived.message, arrived.param, arrived.code) == (
        400,
        "bad mask",
        "mask",
        "invalid_mask",
    )


def test_a_pool_that_never_answers_is_a_503_by_the_deadline_and_its_call_is_cancelled(deployment: Deployment) -> None:
    scripted = Scripted(hang=True)
    started = time.monotonic()
    failure = run(deployment, scripted, deadline=0.3)
    assert time.monotonic() - started < 3
    assert (http_status(failure), failure.code, http_headers(failure)["x-should-retry"]) == (503, "model_busy", "true")
    assert http_headers(failure)["retry-after"]
    # A retry will not find this one still holding the GPU: Modal cancelled it there.
    assert scripted.stopped.wait(WAIT)


def test_a_caller_who_hangs_up_cancels_the_gpu_call(deployment: Deployment) -> None:
    scripted = Scripted(hang=True)
    modal_engine = engine(deployment, scripted)

    async def hang_up() -> None:
        call = asyncio.ensure_future(modal_engine.run(JOB))
        async with asyncio.timeout(WAIT):
            while not scripted.jobs:  # the GPU has started it
                await asyncio.sleep(0.01)
        call.cancel()  # what handlers/disconnect.py does when the client goes
        with pytest.raises(asyncio.CancelledError):
            await call
        await modal_engine.close()

    asyncio.run(hang_up())
    assert scripted.stopped.wait(WAIT)


def test_an_answered_call_is_not_cancelled(deployment: Deployment) -> None:
    modal_engine = engine(deployment, Scripted())
    assert asyncio.run(settled(modal_engine, modal_engine.run(JOB))) == RENDERED
    assert [call.cancel_requests for call in deployment.plane.calls.values()] == [0]


def test_the_deadline_counts_from_when_the_request_arrived_and_travels_in_the_job(deployment: Deployment) -> None:
    scripted = Scripted()
    modal_engine = engine(deployment, scripted, deadline=140)

    async def request(arrived: float) -> Any:
        current_trace.set(JobTrace(received_at=arrived))  # as the request log sets it, on arrival
        return await settled(modal_engine, modal_engine.run(JOB))

    arrived = time.time() - 30  # a slow upload, or a cold front
    assert asyncio.run(request(arrived)) == RENDERED
    assert scripted.jobs[-1].deadline == pytest.approx(arrived + 140)
    late = asyncio.run(request(time.time() - 141))  # nothing left to wait: busy at once, nothing runs
    assert late.code == "model_busy" and len(scripted.jobs) == 1


def test_a_model_without_a_pool_is_a_404(deployment: Deployment) -> None:
    with pytest.raises(APIError) as caught:
        asyncio.run(engine(deployment, Scripted()).run(Job(**{**JOB.__dict__, "model": "other"})))
    assert (http_status(caught.value), caught.value.code) == (404, "model_not_found")


def collect(modal_engine: ModalEngine, take: int | None = None) -> list[ImageEvent]:
    async def consume() -> list[ImageEvent]:
        got = []
        events = modal_engine.stream(JOB)
        try:
            async for event in events:
                got.append(event)
                if take is not None and len(got) == take:
                    await events.aclose()
                    break
        finally:
            await modal_engine.close()
        return got

    return asyncio.run(consume())


def test_a_stream_failing_before_its_first_event_raises_an_api_error(deployment: Deployment) -> None:
    with pytest.raises(APIError) as caught:
        collect(engine(deployment, Scripted(error=modal_errors.InternalFailure("preempted"))))
    assert http_status(caught.value) == 503


def test_a_stream_that_stalls_mid_way_ends_by_the_deadline_and_is_cancelled(deployment: Deployment) -> None:
    partial = ImageEvent("partial", 0, b"preview", partial_index=0)
    scripted = Scripted(events=[partial], hang=True)
    with pytest.raises(APIError) as caught:
        collect(engine(deployment, scripted, deadline=0.3))
    assert caught.value.code == "model_busy"
    assert scripted.stopped.wait(WAIT)  # cancelled on the GPU, not merely no longer read


def test_a_caller_that_stops_listening_cancels_the_remote_stream(deployment: Deployment) -> None:
    events = [ImageEvent("partial", 0, b"a", partial_index=0), ImageEvent("completed", 0, b"b")]
    scripted = Scripted(events=events, hang=True)
    assert collect(engine(deployment, scripted), take=1) == events[:1]  # then the caller's loop is gone
    assert scripted.stopped.wait(WAIT)  # cancelled on the GPU, not merely no longer read
    # Until then the container went on producing, read or not (what only a cancel stops).
    [outputs] = deployment.plane.outputs.values()
    assert outputs.over.wait(WAIT)
    assert [value for kind, value in outputs.pushed if kind == "value"][1:] == events
    assert outputs.pushed[-1][0] == "error" and isinstance(outputs.pushed[-1][1], asyncio.CancelledError)


def test_a_stream_read_to_its_end_is_not_cancelled(deployment: Deployment) -> None:
    events = [ImageEvent("partial", 0, b"a", partial_index=0), ImageEvent("completed", 0, b"b")]
    assert collect(engine(deployment, Scripted(events=events))) == events
    assert [call.cancel_requests for call in deployment.plane.calls.values()] == [0]


def test_the_modal_adapters_import_without_modal_or_torch() -> None:
    """A laptop without Modal (or the torch-less web image) can import them; modal comes lazily."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('modal', 'torch', 'diffusers', 'transformers'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import handlers.hosts.modal.engine, handlers.hosts.modal.volume\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
