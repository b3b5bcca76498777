"""One model's GPU container on Modal: what each `modal_app.ImageWorker_<id>` class runs.

Plain code: `modal_app.py` declares the classes (Modal's container finds a class by its name in
the deployed module) and their enter hooks, methods and exit hook call a `GpuModel`.

Inside a warm container the jobs go through the same LocalEngine as `imagegen serve`: one queue,
the same batch window, so a burst of compatible requests shares pipeline calls. The methods are
async: Modal cancels an input by cancelling its task (a sync method under `@modal.concurrent` is
cancelled by interrupting the whole container), and a cancelled task leaves the LocalEngine's
queue or stops its steps, as a local caller who hangs up does.

Cold starts, by IMAGEGEN_MODAL_SNAPSHOT:
- "gpu" (default): the model is loaded onto the GPU, its editor built and a warm-up run made in
  `load` (the `snap=True` hook); Modal snapshots GPU memory with the rest, and a cold start
  restores all of it (`experimental_options={"enable_gpu_snapshot": True}`).
- "cpu": `load` loads to host RAM (in the GPU's dtype, so half of float32's bytes) and builds
  the editor; each cold start restores that, then `serve` copies the weights to the GPU and warms up.
- "off": every cold start loads from the weights Volume onto the GPU and warms up.

The web front imports this module too (through modal_app.py), and its image has no torch: the
model side is imported inside the functions that run on the GPU only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import modal

from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.engine import StreamStarted
from handlers.hosts.modal.steps import RemoteSteps
from pipelines.contract import errors
from pipelines.contract.job import ImageEvent, Job, Rendered

if TYPE_CHECKING:
    from pipelines.local_engine import LocalEngine

log = logging.getLogger("imagegen")


class GpuModel:
    """One model in one GPU container: `load` (before the snapshot), `serve` (after it), then its
    jobs (`run`, `stream`) until `stop`.

    `commit_weights` persists what this container wrote to the weights Volume (compiled kernels);
    `cancellations` is where the front records the jobs nobody waits for (looked at before a job
    starts and while it runs)."""

    def __init__(
        self,
        model_id: str,
        deployment: ModalDeployment,
        commit_weights: Callable[[], None],
        cancellations: Cancellations | None = None,
    ) -> None:
        self.model_id = model_id
        self.cancellations = cancellations or Cancellations(None)
        self.steps = RemoteSteps(self.cancellations.store, poll_seconds=self.cancellations.poll_seconds)
        self.deployment = deployment
        self.commit_weights = commit_weights
        self.engine: LocalEngine | None = None
        self.engine_started = False
        self.restored = False
        self.cuda = "not looked at yet"
        self.outcomes = {"made": 0, "stopped": 0, "failed": 0}

    def _gpu(self) -> str:
        from pipelines.cuda_report import cuda_report
        from pipelines.devices import pick_device

        # What this container runs on, in its start log (and again after a snapshot's restore,
        # which may land on another host): a driver behind torch's CUDA runtime shows here.
        report = self.cuda = cuda_report()
        log.info("%s: %s", self.model_id, report)
        device = pick_device("auto")
        if device == "cpu" and not modal.is_local():
            # A GPU class that serves on the CPU times out on every request: fail the container,
            # and Modal starts another (on `.local()`, a developer's CPU, it serves anyway).
            attached = "is attached but torch sees none" if Path("/dev/nvidiactl").exists() else "is not attached"
            raise RuntimeError(
                f"{self.model_id}: the container's GPU {attached} ({report}); refusing to serve on the CPU"
            )
        return device

    def _keep_compiled_kernels(self) -> None:
        """Commit what the warm-up compiled to the weights Volume (in a container, not on a laptop)."""
        from pipelines.optimize import Optimizations
        from pipelines.settings import EngineSettings

        if not modal.is_local() and Optimizations.from_settings(EngineSettings()).for_device("cuda").torch_compile:
            self.commit_weights()

    def load(self) -> None:
        """The model loaded (onto the GPU, or to host RAM for a CPU snapshot), its editor built."""
        from pipelines.contract.matting import MATTING_MODELS
        from pipelines.matting.matte import Matting
        from pipelines.model_cache import ModelCache
        from pipelines.optimize import Optimizations
        from pipelines.settings import EngineSettings
        from pipelines.warm_up import warm_up
        from pipelines.worker import Worker

        # A failed load raises: no snapshot of a container without its model, and the caller
        # gets the Worker's error (model_load_failed, naming the model) instead of a hang.
        spec = self.deployment.catalog().get(self.model_id)
        if spec is None:
            raise errors.model_not_found(self.model_id)
        # Only a CPU snapshot is taken without the GPU at hand; otherwise load straight onto it.
        device = "cpu" if self.deployment.snapshot == "cpu" else self._gpu()
        engine_settings = EngineSettings()
        self.models = ModelCache(
            [spec],
            cache_dir=engine_settings.cache_dir,
            device=device,
            max_loaded=1,
            dtype=self.deployment.dtype_for(self.model_id),
            optimizations=Optimizations.from_settings(engine_settings),
        )
        matting = Matting(MATTING_MODELS[engine_settings.matting_model], engine_settings.cache_dir)
        self.worker = Worker(self.models, png_parameters=engine_settings.png_parameters, matting=matting)
        try:
            model = self.models.get(self.model_id)
        except errors.APIError:
            log.error(
                "%s is not loadable from the weights Volume; fetch it with: "
                "modal run modal_app.py::download --models %s",
                self.model_id,
                self.model_id,
            )
            raise
        if {"edit", "variation"} & set(spec.tasks):
            model.editor()  # made now (and snapshotted), not on the first edit
        log.info("%s loaded on %s", self.model_id, device)
        if device != "cpu":
            warm_up(self.worker, spec)
            self._keep_compiled_kernels()

    def serve(self) -> None:
        """After a CPU snapshot, the model onto the GPU; then the engine that takes the jobs."""
        from pipelines.local_engine import LocalEngine
        from pipelines.settings import EngineSettings
        from pipelines.warm_up import warm_up

        self.restored = restored_from_snapshot()
        log.info("%s: %s", self.model_id, "restored from a snapshot" if self.restored else "started without a snapshot")
        if self.deployment.snapshot == "cpu":
            device = self._gpu()
            if device != "cpu":
                self.models.move_to(device)  # a reload (after a failure) goes straight there too
                warm_up(self.worker, self.deployment.catalog()[self.model_id])
                self._keep_compiled_kernels()
        # Modal bounds the inputs a container holds, so the queue never refuses one; the Job's
        # deadline, not a queue timeout, says when nobody waits any more.
        self.engine = LocalEngine(
            self.worker,
            EngineSettings(
                models=[self.model_id],
                preload=False,
                max_queue=self.deployment.gpu_max_inputs,
                queue_timeout_seconds=self.deployment.timeout,
            ),
        )
        self.engine_started = False
        if self.deployment.snapshot == "gpu":  # the GPU as restored: this host's driver, maybe another's
            from pipelines.cuda_report import cuda_report

            self.cuda = cuda_report()
            log.info("%s: %s", self.model_id, self.cuda)
        log.info("%s serving on %s", self.model_id, self.models.device)

    async def _engine(self) -> LocalEngine:
        assert self.engine is not None, "serve() first"
        if not self.engine_started:  # its queue's task lives on the loop that runs the methods
            self.engine_started = True
            await self.engine.start()
        return self.engine

    async def run(self, job: Job, cancel_key: str | None = None, report_steps: bool = False) -> Rendered:
        """The Job's images, encoded, and its usage; compatible jobs waiting together share a pipeline call.
        Nothing runs if the front has cancelled `cancel_key` already; with `report_steps`, its steps
        are written where the front reads them (steps.py)."""
        watching = self.cancellations.watching(cancel_key, f"{job.task} on {self.model_id}")
        async with self._counted(), watching, self.steps.reporting(cancel_key, report_steps):
            return await (await self._engine()).run(job)

    async def stream(self, job: Job, cancel_key: str | None = None) -> AsyncIterator[StreamStarted | ImageEvent]:
        """This call's id (for the front to cancel it by), then the Job as events."""
        yield StreamStarted(modal.current_function_call_id())
        async with self._counted(), self.cancellations.watching(cancel_key, f"streamed {job.task} on {self.model_id}"):
            async for event in (await self._engine()).stream(job):
                yield event

    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[None]:
        """Count how each job ended: made, or stopped because nobody waited (what --verify reads)."""
        try:
            yield
        except asyncio.CancelledError:
            self.outcomes["stopped"] += 1
            raise
        except errors.APIError as exc:
            self.outcomes["stopped" if exc.code in ("cancelled", "client_closed_request") else "failed"] += 1
            raise
        except Exception:
            self.outcomes["failed"] += 1
            raise
        self.outcomes["made"] += 1

    async def describe(self) -> dict[str, object]:
        """What this container runs on and how it started, for `scripts/deploy.py --verify`."""
        busy = 0
        if self.engine is not None and self.engine_started:
            status = self.engine.status()[self.model_id]
            busy = status.waiting + status.running
        return {
            "model": self.model_id,
            "cuda": self.cuda,
            "restored": self.restored,
            "container": os.environ.get("MODAL_TASK_ID", ""),
            "busy": busy,  # jobs this container holds now (waiting or running)
            **self.outcomes,  # jobs made, stopped (nobody waited) and failed so far
        }

    async def stop(self) -> None:
        if self.engine is not None and self.engine_started:
            await self.engine.close()


def restored_from_snapshot() -> bool:
    """Whether this container was restored from a memory snapshot: Modal's worker writes the
    restore state file only then, and the container waits for it (`memory_restore` in
    `modal/_runtime/task_lifecycle_manager.py`; the path is modal's `restore_state_path` setting)."""
    from modal.config import config

    return Path(config.get("restore_state_path")).exists()


def fetch_weights(deployment: ModalDeployment, model_ids: list[str], cache_dir: Path) -> list[str]:
    """Each model's pinned weights into the hub cache (a tiny model is built into `cache_dir`); a
    matting model's too (`--models birefnet`), as `imagegen pull` takes either."""
    from pipelines.contract.matting import MATTING_MODELS
    from pipelines.matting.matte import fetch_matting
    from pipelines.weights import fetch

    catalog = deployment.catalog()  # the models file's entries too
    unknown = [model_id for model_id in model_ids if model_id not in catalog and model_id not in MATTING_MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}: not in the catalog ({', '.join(catalog)})")
    return [
        fetch_matting(MATTING_MODELS[model_id], cache_dir)
        if model_id in MATTING_MODELS
        else fetch(catalog[model_id], cache_dir)
        for model_id in model_ids
    ]
