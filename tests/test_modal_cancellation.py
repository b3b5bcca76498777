"""A caller who leaves stops its GPU work, however the request ends, driven through Modal's own ASGI
layer (tests/modal_asgi.py) in front of GPU classes in containers faked at Modal's boundary
(tests/modal_control_plane.py): a disconnect message, the request's task cancelled, the deadline,
an error on the way; and a stream left during a cold start, before any call id exists."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modal import exception as modal_errors

import modal_app
from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.web import create_web_app
from handlers.settings import ServerSettings
from tests.conftest import API_KEY
from tests.modal_asgi import ModalRequest, lifespan
from tests.modal_control_plane import Deployment, Dict
from tests.test_modal_app import gpu_instance
from tests.test_modal_engine import Scripted
from tests.test_modal_volume_store import SharedVolume

WAIT = 30.0  # a bound for what the fake's containers do, never a pause
GENERATE = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "response_format": "b64_json"}


def front(tmp_path: Path, gpus: Deployment, cancelled: Dict, deadline: float = 120.0, **settings: Any) -> Any:
    """The deployed front's app over `gpus`, as `modal_app.web` builds it."""
    return create_web_app(
        ServerSettings(api_keys=API_KEY, storage_dir=tmp_path / "images", **settings),
        gpus.gpu_class,
        SharedVolume().mount(tmp_path / "images"),
        ModalDeployment(models=["tiny-sd"], deadline_seconds=deadline),
        function_call=gpus.plane.from_id,
        cancellations=Cancellations(cancelled),
    )


async def until(condition: Callable[[], Any], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def served(tmp_path: Path, scripted: Scripted, scenario: Callable[..., Any], deadline: float = 120.0) -> Any:
    """`scenario(app, gpus)` run with the front's lifespan around it, over a warm pool of `scripted`."""
    gpus = Deployment(lambda model_id: scripted)
    try:
        gpus.gpu_class("tiny-sd")()
        gpus.containers["tiny-sd"].entered.result(timeout=WAIT)
        app = front(tmp_path, gpus, Dict(), deadline)

        async def run() -> Any:
            manager = await lifespan(app)
            try:
                return await scenario(app, gpus)
            finally:
                await manager.lifespan_shutdown()

        return asyncio.run(run())
    finally:
        gpus.close()


async def stopped_on_the_gpu(scripted: Scripted) -> bool:
    """Whether the GPU's task for the job was cancelled, waited for well inside the front's deadline
    (so only the front's cancel, not the deadline, can have stopped it)."""
    return await asyncio.to_thread(scripted.stopped.wait, WAIT)


@pytest.mark.parametrize("ending", ["disconnect message", "task cancelled"])
def test_a_caller_who_hangs_up_stops_its_gpu_call_either_way_modal_ends_the_request(
    tmp_path: Path, ending: str
) -> None:
    scripted = Scripted(hang=True)

    async def scenario(app: Any, gpus: Deployment) -> bool:
        request = ModalRequest(app, "POST", "/v1/images/generations", GENERATE)
        await until(lambda: scripted.jobs, "the GPU got the job")
        if ending == "disconnect message":
            request.hang_up()  # and nothing else: the front alone must notice
        else:
            await request.cancel()
        stopped = await stopped_on_the_gpu(scripted)
        await asyncio.wait({request.task}, timeout=WAIT)  # waited for, never cancelled here
        return stopped and request.task.done()

    assert served(tmp_path, scripted, scenario)


def test_a_request_past_its_deadline_is_a_retryable_503_pointing_at_jobs_and_stops_its_gpu_call(
    tmp_path: Path,
) -> None:
    scripted = Scripted(hang=True)

    async def scenario(app: Any, gpus: Deployment) -> tuple[Any, ...]:
        request = ModalRequest(app, "POST", "/v1/images/generations", GENERATE)
        answer = await request.answer(WAIT)
        return (*answer, await stopped_on_the_gpu(scripted))

    status, headers, body, stopped = served(tmp_path, scripted, scenario, deadline=1.0)
    error = json.loads(body)["error"]
    assert (status, error["code"], headers["x-should-retry"]) == (503, "model_busy", "true")
    assert int(headers["retry-after"]) > 0
    assert "Prefer: respond-async" in error["message"] and "/v1/images/jobs/" in error["message"]
    assert stopped


def test_a_request_ended_by_an_error_on_the_way_stops_its_gpu_call(tmp_path: Path) -> None:
    scripted = Scripted(hang=True)

    async def scenario(app: Any, gpus: Deployment) -> tuple[Any, ...]:
        gpus.plane.waits_fail = modal_errors.ConnectionError("control plane away")  # the call runs on
        request = ModalRequest(app, "POST", "/v1/images/generations", GENERATE)
        answer = await request.answer(WAIT)
        return (*answer, await stopped_on_the_gpu(scripted))

    status, _headers, body, stopped = served(tmp_path, scripted, scenario)
    assert (status, json.loads(body)["error"]["code"]) == (503, "backend_unavailable")
    assert stopped


@pytest.fixture
def real_gpus(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """modal_app's own GPU class on tiny-sd, its containers starting cold (held until `booted`),
    the cancellation Dict faked at Modal's boundary."""
    monkeypatch.setenv("IMAGEGEN_CACHE_DIR", str(cache_dir))
    cancelled = Dict()
    monkeypatch.setattr(modal_app, "cancelled", cancelled)
    gpus = Deployment(gpu_instance)
    gpus.booted = threading.Event()
    yield gpus, cancelled
    gpus.booted.set()
    gpus.close()


@pytest.mark.parametrize("ending", ["disconnect message", "task cancelled"])
def test_a_stream_left_during_a_cold_start_never_takes_the_gpu(
    tmp_path: Path, real_gpus: Any, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    """No call id exists yet (it is the stream's first item), so only the Dict can stop it."""
    gpus, cancelled = real_gpus
    caplog.set_level(logging.INFO, logger="imagegen")
    app = front(tmp_path, gpus, cancelled)

    async def scenario() -> None:
        manager = await lifespan(app)
        try:
            request = ModalRequest(app, "POST", "/v1/images/generations", {**GENERATE, "stream": True})
            await until(lambda: gpus.plane.calls, "the front sent the stream")
            if ending == "disconnect message":
                request.hang_up()  # and nothing else: the front alone must notice
            else:
                await request.cancel()
            await until(lambda: list(cancelled.keys()), "the front recorded the cancellation")
            await asyncio.wait({request.task}, timeout=WAIT)  # waited for, never cancelled here
            assert request.task.done()
            gpus.booted.set()  # the cold start ends; the input reaches the container
            [outputs] = gpus.plane.outputs.values()
            assert await asyncio.to_thread(outputs.over.wait, WAIT)
            kind, value = outputs.pushed[-1]
            assert (kind, getattr(value, "code", value)) == ("error", "cancelled")
        finally:
            await manager.lifespan_shutdown()

    asyncio.run(scenario())
    worker = gpus.containers["tiny-sd"].instance.gpu_model.worker
    assert worker.batch_sizes("tiny-sd") == {}  # no pipeline call: the GPU was never used for it
    assert "its caller left before it started" in caplog.text
