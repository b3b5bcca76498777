"""Jobs on Modal outlive the front container that accepted them: real fronts (the deployed app on
uvicorn) over modal_app's own GPU class in a container faked at Modal's boundary, sharing one
job Dict and one images Volume. A front that dies (its event loop stops where it is: no shutdown,
no more writes, no more lease renewals) leaves its jobs to another front, which finishes them
with the same pixels or fails them with the reason; a live front keeps its jobs; and the steps of
a job running on a GPU container reach the client that polls any front, and an MCP client's
progress notifications."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from openai import OpenAI

import modal_app
from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.job_store import ModalDictJobStore
from handlers.hosts.modal.web import create_web_app
from handlers.settings import ServerSettings
from tests.conftest import API_KEY, _free_port
from tests.job_helpers import SMALL, ended, submit, wait_for, with_pixels
from tests.modal_control_plane import Deployment, Dict
from tests.test_mcp import mcp_session
from tests.test_modal_app import gpu_instance
from tests.test_modal_volume_store import SharedVolume

# Short, so the tests wait seconds for a lapse; long enough that a busy machine does not lapse a
# live front's lease (it is renewed three times a lease).
LEASE_SECONDS = 2.0
# Many leases long on a CPU: a job that runs while fronts come and go (tiny models take <= 50 steps).
LONG = {"model": "tiny-sd", "prompt": "a long job", "size": "512x512", "extra_body": {"num_inference_steps": 50}}


class Front:
    """One front container on its own event loop, which `die` stops where it is."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        began = time.monotonic()
        while not self.server.started:
            assert time.monotonic() - began < 60, "the front did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = OpenAI(api_key=API_KEY, base_url=f"{self.url}/v1", max_retries=0, timeout=120)

    def _serve(self) -> None:
        with contextlib.suppress(RuntimeError):  # "Event loop stopped before Future completed": died
            self.loop.run_until_complete(self.server.serve())

    def die(self) -> None:
        """The container is gone: nothing of it runs any more (its GPU calls run on, unread)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def plane(cache_dir: Path) -> Iterator[tuple[Deployment, Dict, Dict, SharedVolume]]:
    """The GPU pools, the cancellations' Dict, the job Dict and the images Volume of one deployment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEGEN_CACHE_DIR", str(cache_dir))
        cancelled = Dict()
        patch.setattr(modal_app, "cancelled", cancelled)
        gpus = Deployment(gpu_instance)
        try:
            yield gpus, cancelled, Dict(), SharedVolume()
        finally:
            gpus.close()


@pytest.fixture
def front(plane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Starts front containers of the deployment (`models` it serves); stops them after the test."""
    gpus, cancelled, records, volume = plane
    started: list[Front] = []

    def start(models: tuple[str, ...] = ("tiny-sd",)) -> Front:
        storage = tmp_path_factory.mktemp("front")
        app = create_web_app(
            ServerSettings(api_keys=API_KEY, storage_dir=storage, jobs_in_engine=1, jobs_lease_seconds=LEASE_SECONDS),
            gpus.gpu_class,
            volume.mount(storage),
            ModalDeployment(models=list(models)),
            function_call=gpus.plane.from_id,
            cancellations=Cancellations(cancelled),
            job_store=ModalDictJobStore(records),
        )
        started.append(Front(app))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def outcomes(gpus: Deployment) -> dict[str, int]:
    """How the tiny-sd GPU container's jobs have ended so far (what `deploy.py --verify` reads)."""

    async def ask() -> dict[str, int]:
        call = await gpus.gpu_class("tiny-sd")().describe.spawn.aio()
        found = await call.get.aio()
        return {name: found[name] for name in ("made", "stopped", "failed")}

    return asyncio.run(ask())


def test_the_jobs_of_a_front_that_died_are_finished_by_another_or_failed_with_why(front) -> None:
    a = front(("tiny-sd", "tiny-flux"))
    seeded = {**SMALL, "extra_body": {"seed": 21, "num_inference_steps": 2}}
    running = submit(
        a.client, **{**LONG, "response_format": "b64_json", "extra_body": {"seed": 7, "num_inference_steps": 20}}
    )[1]
    waiting = submit(a.client, **seeded)[1]  # behind it in A's line (one job in the engine at once)
    orphan = submit(a.client, **{**LONG, "model": "tiny-flux"})[1]
    # Started: waiting for "in_progress" itself could miss it on a busy machine (a poll that comes
    # after the job ended would wait forever); each must still be running when A dies.
    for accepted in (orphan, running):
        started = wait_for(a.client, accepted["id"], lambda found: found["status"] != "queued")
        assert started["status"] == "in_progress", started
    assert wait_for(a.client, waiting["id"], lambda found: True)["status"] == "queued"
    a.die()

    b = front()  # a newer deployment's front: tiny-flux is no longer served
    for accepted in (running, waiting):
        assert wait_for(b.client, accepted["id"])["status"] == "completed"
    failed = wait_for(b.client, orphan["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "job_lost"
    assert "tiny-flux is no longer served by the front that took it up" in failed["error"]["message"]
    # The same images as the synchronous calls for the same seeds.
    for accepted, body in (
        (running, {**LONG, "response_format": "b64_json", "extra_body": {"seed": 7, "num_inference_steps": 20}}),
        (waiting, seeded),
    ):
        sync = b.client.images.generate(**body).model_dump(exclude_none=True)
        result = wait_for(b.client, accepted["id"])["result"]
        assert with_pixels(result)["data"] == with_pixels(sync)["data"]


def test_a_live_front_keeps_its_job_and_its_steps_reach_any_front(front, plane) -> None:
    gpus = plane[0]
    a, b = front(), front()
    before = outcomes(gpus)
    job_id = submit(a.client, **LONG)[1]["id"]
    polled: list[dict[str, Any]] = []
    found = wait_for(b.client, job_id, lambda found: polled.append(found) or ended(found))
    assert found["status"] == "completed"
    steps = {each["progress"]["step"] for each in polled if each["status"] == "in_progress"}
    assert any(0 < step < found["progress"]["steps"] for step in steps), steps  # it moved while it ran
    assert found["finished_at"] - found["started_at"] >= 2 * LEASE_SECONDS  # so B had its chances to take it
    after = outcomes(gpus)
    assert after["made"] - before["made"] == 1  # run once: by A, never again by B
    assert after["stopped"] == before["stopped"]


def test_an_mcp_call_on_modal_is_told_the_gpu_containers_steps(front) -> None:
    a = front()
    told: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        told.append((progress, total, message))

    async def call() -> Any:
        async with mcp_session(a) as session:
            arguments = {"model": "tiny-sd", "prompt": "a slow fox", "size": "512x512", "num_inference_steps": 50}
            return await session.call_tool("generate_image", arguments, progress_callback=on_progress)

    assert not asyncio.run(call()).is_error
    done = [progress for progress, _, _ in told]
    assert done == sorted(set(done)) and done[-1] == 50, told
    assert any(0 < step < 50 for step in done), told  # told while it ran, not only at the end
    assert {total for _, total, _ in told} == {50}
