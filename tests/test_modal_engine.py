"""ModalEngine when the Modal side misbehaves: every failure is an APIError, in time, with an honest
x-should-retry. The remote pools here are stand-ins raising what Modal's client raises."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from modal import exception as modal_errors

from handlers.http_errors import http_headers, http_status
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job
from pipelines.modal_engine import ModalEngine
from tests.conftest import ROOT

JOB = Job(task="generate", model="tiny-sd", prompt="x", n=1, width=64, height=64, output_width=64, output_height=64,
          steps=2, guidance=0.0, seeds=(1,))


class Behaviour:
    """What the remote call does: raise, hang, or yield events then raise/hang."""

    def __init__(self, *, error: BaseException | None = None, hang: bool = False,
                 events: list[ImageEvent] | None = None) -> None:
        self.error = error
        self.hang = hang
        self.events = events or []
        self.closed = False


class Remote:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def aio(self, job: Job) -> list[bytes]:
        if self.behaviour.hang:
            await asyncio.Event().wait()
        if self.behaviour.error:
            raise self.behaviour.error
        return [b"image"]


class RemoteGen:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def aio(self, job: Job) -> AsyncIterator[ImageEvent]:
        try:
            for event in self.behaviour.events:
                yield event
            if self.behaviour.hang:
                await asyncio.Event().wait()
            if self.behaviour.error:
                raise self.behaviour.error
        finally:
            self.behaviour.closed = True


class Method:
    def __init__(self, behaviour: Behaviour) -> None:
        self.remote = Remote(behaviour)
        self.remote_gen = RemoteGen(behaviour)


class Pools:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    def with_options(self, *, gpu: str) -> Any:
        def pool(*, model_id: str) -> Any:
            method = Method(self.behaviour)
            return type("Pool", (), {"run": method, "stream": method})()

        return pool


def engine(behaviour: Behaviour, deadline: float = 5.0) -> ModalEngine:
    return ModalEngine(Pools(behaviour), {"tiny-sd": "T4"}, deadline_seconds=deadline)


def run(behaviour: Behaviour, deadline: float = 5.0) -> APIError:
    with pytest.raises(APIError) as caught:
        asyncio.run(engine(behaviour, deadline).run(JOB))
    return caught.value


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
def test_modal_failures_become_api_errors(error: BaseException, status: int, code: str, retry: str) -> None:
    failure = run(Behaviour(error=error))
    assert (http_status(failure), failure.code, http_headers(failure)["x-should-retry"]) == (status, code, retry)
    assert "tiny-sd" in failure.message and "Traceback" not in failure.message
    if retry == "true":
        assert int(http_headers(failure)["retry-after"]) > 0


def test_an_api_error_from_the_gpu_passes_through_unchanged() -> None:
    remote = APIError(400, "bad mask", param="mask", code="invalid_mask")
    assert run(Behaviour(error=remote)) is remote


def test_a_pool_that_never_answers_is_a_503_by_the_deadline_never_a_hang() -> None:
    started = time.monotonic()
    failure = run(Behaviour(hang=True), deadline=0.2)
    assert time.monotonic() - started < 2
    assert (http_status(failure), failure.code, http_headers(failure)["x-should-retry"]) == (503, "model_busy", "true")
    assert http_headers(failure)["retry-after"]


def test_a_model_without_a_pool_is_a_404() -> None:
    with pytest.raises(APIError) as caught:
        asyncio.run(engine(Behaviour()).run(Job(**{**JOB.__dict__, "model": "other"})))
    assert (http_status(caught.value), caught.value.code) == (404, "model_not_found")


def collect(behaviour: Behaviour, deadline: float = 5.0, take: int | None = None) -> list[ImageEvent]:
    async def consume() -> list[ImageEvent]:
        got = []
        events = engine(behaviour, deadline).stream(JOB)
        async for event in events:
            got.append(event)
            if take is not None and len(got) == take:
                await events.aclose()
                break
        return got

    return asyncio.run(consume())


def test_a_stream_failing_before_its_first_event_raises_an_api_error() -> None:
    with pytest.raises(APIError) as caught:
        collect(Behaviour(error=modal_errors.InternalFailure("preempted")))
    assert http_status(caught.value) == 503


def test_a_stream_that_stalls_mid_way_ends_by_the_deadline() -> None:
    partial = ImageEvent("partial", 0, b"preview", partial_index=0)
    behaviour = Behaviour(events=[partial], hang=True)
    got: list[ImageEvent] = []

    async def consume() -> None:
        async for event in engine(behaviour, deadline=0.2).stream(JOB):
            got.append(event)

    with pytest.raises(APIError) as caught:
        asyncio.run(consume())
    assert got == [partial] and caught.value.code == "model_busy"
    assert behaviour.closed  # the remote generator was closed, not left running


def test_a_caller_that_stops_listening_closes_the_remote_stream() -> None:
    events = [ImageEvent("partial", 0, b"a", partial_index=0), ImageEvent("completed", 0, b"b")]
    behaviour = Behaviour(events=events)
    assert collect(behaviour, take=1) == events[:1]
    assert behaviour.closed


def test_the_modal_adapters_import_without_modal_or_torch() -> None:
    """A laptop without Modal (or the torch-less web image) can import them; modal comes lazily."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('modal', 'torch', 'diffusers', 'transformers'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pipelines.modal_engine, handlers.stores.volume\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
