"""`scripts/deploy.py --verify`'s checks, offline: the real fronts (two containers of them, sharing
the temp-image Volume) served by uvicorn, in front of modal_app's own GPU class on tiny-sd in a
container faked at Modal's boundary. What only a live deployment has says SKIP.

The job and MCP checks are written against the contracts of the jobs and MCP work and pass once
that work is merged: their strict xfail then fails, which is the signal to drop the marker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import modal_app
from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.job_store import ModalDictJobStore
from handlers.hosts.modal.web import create_web_app
from handlers.settings import ServerSettings
from scripts.verify_deploy import CHECKS, Options, verify
from tests.conftest import API_KEY, _free_port
from tests.modal_control_plane import Deployment, Dict
from tests.test_modal_app import gpu_instance
from tests.test_modal_volume_store import SharedVolume


class ServedFront:
    """One front container: the deployed app over the fake GPU pools, on a real uvicorn."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        began = time.monotonic()
        while not self.server.started:
            assert time.monotonic() - began < 60, "the front did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class OfflineDeployment:
    live = False

    def __init__(self, gpus: Deployment, fronts: list[ServedFront]) -> None:
        self.gpus, self.fronts = gpus, fronts
        self.base_url, self.api_key = fronts[0].url, API_KEY

    def describe(self, model: str) -> dict[str, Any]:
        async def ask() -> dict[str, Any]:
            call = await self.gpus.gpu_class(model)().describe.spawn.aio()
            return await call.get.aio()

        return asyncio.run(ask())

    def restart(self, model: str) -> None:
        raise AssertionError("no restarts offline: the snapshot check skips first")

    def other_front(self) -> str | None:
        return self.fronts[1].url


@pytest.fixture(scope="module")
def outcomes(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEGEN_CACHE_DIR", str(cache_dir))
        cancelled, job_records = Dict(), Dict()
        patch.setattr(modal_app, "cancelled", cancelled)
        gpus, volume = Deployment(gpu_instance), SharedVolume()
        fronts = []
        try:
            for name in ("front-a", "front-b"):
                storage = tmp_path_factory.mktemp(name)
                app = create_web_app(
                    ServerSettings(api_keys=API_KEY, storage_dir=storage),
                    gpus.gpu_class,
                    volume.mount(storage),
                    ModalDeployment(models=["tiny-sd"]),
                    function_call=gpus.plane.from_id,
                    cancellations=Cancellations(cancelled),
                    job_store=ModalDictJobStore(job_records),
                )
                fronts.append(ServedFront(app))
            lines: list[str] = []
            # Long enough on a CPU that the caller can leave while it runs; a bound for every wait.
            options = Options(model="tiny-sd", size="512x512", steps=50, hang_up_n=4, bound=120)
            yield verify(OfflineDeployment(gpus, fronts), options, say=lines.append), "\n".join(lines)
        finally:
            for front in fronts:
                front.stop()
            gpus.close()


EXPECTED = {"snapshot": "SKIP", "past 150 s": "SKIP"}


@pytest.mark.parametrize("check", CHECKS)
def test_each_check_says_its_outcome_in_one_line(outcomes: tuple[dict[str, str], str], check: str) -> None:
    found, lines = outcomes
    assert found[check] == EXPECTED.get(check, "PASS"), lines
    [line] = [line for line in lines.splitlines() if line.split(" ", 1)[1].startswith(f"{check}:")]
    assert line.startswith(found[check])
