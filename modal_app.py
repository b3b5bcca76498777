"""# imagegen on Modal: an OpenAI-compatible image API on serverless GPUs

`modal deploy modal_app.py` gives a public, key-protected endpoint that any OpenAI SDK can point
at. Behind it:

- a small CPU web function serving the same FastAPI app as `imagegen serve` (no torch in it, so
  it starts in a second or two),
- one GPU class per model, each its own autoscaling pool with its own GPUs (a fallback list),
  host RAM and CPU, keeping its pipeline warm in memory between requests and batching the
  requests that arrive together; work nobody waits for any more is cancelled there,
- a Volume with the weights (downloaded once, never per container) and a Volume with the temp
  images behind returned URLs, cleaned up on a schedule.

Nothing here is business logic: it composes `handlers` (the HTTP service) and `pipelines` (the
Worker), exactly as local mode does. `python scripts/deploy.py` wraps the whole routine.
"""

import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import modal
from fastapi import FastAPI

from handlers.app import create_app
from handlers.hosts.modal_deployment import ModalDeployment
from handlers.settings import ServerSettings
from handlers.stores.volume import ModalVolumeFiles, VolumeFiles, VolumeImageStore
from pipelines.contract import errors
from pipelines.contract.job import ImageEvent, Job
from pipelines.contract.served import ServedModels
from pipelines.modal_engine import ModalEngine, StreamStarted
from pipelines.settings import EngineSettings

log = logging.getLogger("imagegen")
if not modal.is_local():  # in a container, the log is stdout/stderr: say what loaded where
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# ## Deploy-time knobs
#
# `ModalDeployment` reads IMAGEGEN_MODELS and IMAGEGEN_MODAL_* when `modal deploy` imports this
# file (and `scripts/deploy.py` checks them the same way first); the containers that need them
# at run time get them forwarded. The defaults suit an interactive API: scale to zero, stay
# warm five minutes after the last request, answer before Modal's 150 s web limit.

deployment = ModalDeployment()
app = modal.App(deployment.app_name)

# ## Container images
#
# The GPU image has the model side, pinned to the versions the test suite runs. PyPI's Linux
# torch wheels are the CUDA builds (the CUDA runtime arrives as pip packages), so no CUDA base
# image is needed. The web image has only what `handlers` imports: no torch, diffusers or
# transformers, so the front cold-starts fast. Both carry our two packages.

WEB_PACKAGES = ("fastapi==0.165.0", "pydantic==2.14.3", "pydantic-settings==2.16.3", "python-multipart==0.0.34",
                "pillow==13.0.0", "prometheus-client==0.26.0", "fastapi-offline==1.7.7")
MODEL_PACKAGES = ("torch==2.13.0", "diffusers==0.42.1", "transformers==5.23.0", "accelerate==1.15.0",
                  "safetensors==0.8.0", "huggingface_hub==2.4.0", "peft==0.21.2")
WEIGHTS_DIR = "/weights"
# LoRA files, on the weights Volume: `modal volume put imagegen-weights pixel.safetensors /loras/`.
LORA_DIR = f"{WEIGHTS_DIR}/loras"
IMAGES_DIR = "/images"

gpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*MODEL_PACKAGES, *WEB_PACKAGES)
    # The hub cache lives on the weights Volume: downloaded once, read by every container.
    .env({"HF_HOME": f"{WEIGHTS_DIR}/hf", "HF_XET_HIGH_PERFORMANCE": "1"})
    .add_local_python_source("handlers", "pipelines")
)
web_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*WEB_PACKAGES)
    .add_local_python_source("handlers", "pipelines")
)

with gpu_image.imports():
    from pipelines.devices import pick_device
    from pipelines.local_engine import LocalEngine
    from pipelines.model_cache import ModelCache
    from pipelines.optimize import Optimizations
    from pipelines.warm_up import warm_up
    from pipelines.weights import fetch
    from pipelines.worker import Worker

# ## Volumes and the Secret
#
# Weights: the Hugging Face cache (and the built tiny models), filled by `download` below.
# Temp images: a v2 Volume (no file-count limit), written by the front, swept by `cleanup`.
# The Secret holds IMAGEGEN_API_KEYS (and HF_TOKEN for gated models such as FLUX.1-schnell).

weights = modal.Volume.from_name(f"{deployment.app_name}-weights", create_if_missing=True)
images = modal.Volume.from_name(f"{deployment.app_name}-images", create_if_missing=True, version=2)
secret = modal.Secret.from_name(deployment.secret_name)

# ## The GPU classes: one warm pool per model
#
# Each served model gets its own class (`ImageWorker_flux_schnell`, …), so each scales on its own
# and asks for what it needs: its GPUs, preferred first (Modal falls back down the list when the
# first is scarce), the host RAM its weights pass through (the catalog's `host_memory_gib`),
# CPU cores for encoding, the regions allowed. The pipeline is loaded once per container and
# stays in memory until the container has been idle for `scaledown_window` seconds.
#
# Inside a warm container the jobs go through the same LocalEngine as `imagegen serve`: one
# queue, the same batch window, so a burst of compatible requests shares pipeline calls. A
# container holds up to `gpu_max_inputs` inputs; the autoscaler adds containers past
# `gpu_target_inputs`. The methods are async: Modal cancels an input by cancelling its task
# (a sync method under `@modal.concurrent` is cancelled by interrupting the whole container),
# and a cancelled task leaves the LocalEngine's queue or stops its steps, as a local caller who
# hangs up does.
#
# Cold starts, by IMAGEGEN_MODAL_SNAPSHOT:
# - "gpu" (default): the model is loaded onto the GPU, its editor built and a warm-up run made
#   in `snap=True`; Modal snapshots GPU memory with the rest, and a cold start restores all of
#   it (`experimental_options={"enable_gpu_snapshot": True}`, as modal-examples' gpu_snapshot.py).
# - "cpu": `snap=True` loads to host RAM (in the GPU's dtype, so half of float32's bytes) and
#   builds the editor; each cold start restores that, then copies the weights to the GPU and
#   warms up.
# - "off": every cold start loads from the weights Volume onto the GPU and warms up.
# Snapshots exist only for deployed apps (`modal run` starts cold every time).

SNAPSHOTS = deployment.snapshot != "off"
# What a GPU container sees of the deployment: the same settings `modal deploy` read here, so
# its decisions (a model's GPUs, hence its dtype; the snapshot mode; the app's name) are the
# deploy-time ones. Weights come from the Volume only: a missing model fails at once, naming itself.
# Inductor's compiled kernels go to the weights Volume too (committed after the warm-up that
# compiles them), so a container that cannot restore a snapshot does not compile again.
GPU_ENV = {"IMAGEGEN_COMPILE_CACHE_DIR": f"{WEIGHTS_DIR}/compile-cache", **deployment.forwarded_env(),
           "HF_HUB_OFFLINE": "1", "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"}


def _keep_compiled_kernels() -> None:
    """Commit what the warm-up compiled to the weights Volume (in a container, not on a laptop)."""
    if not modal.is_local() and Optimizations.from_settings(EngineSettings()).for_device("cuda").torch_compile:
        weights.commit()


class ImageWorker:
    """The GPU side of one model: the subclasses below fix `model_id`."""

    model_id: str

    def _gpu(self) -> str:
        device = pick_device("auto")
        if device == "cpu" and not modal.is_local():
            # A GPU class that serves on the CPU times out on every request: fail the container,
            # and Modal starts another (on `.local()`, a developer's CPU, it serves anyway).
            attached = "is attached but torch sees none" if Path("/dev/nvidiactl").exists() else "is not attached"
            raise RuntimeError(f"{self.model_id}: the container's GPU {attached}; refusing to serve on the CPU")
        return device

    @modal.enter(snap=SNAPSHOTS)
    def load(self) -> None:
        # A failed load raises: no snapshot of a container without its model, and the caller
        # gets the Worker's error (model_load_failed, naming the model) instead of a hang.
        spec = deployment.catalog().get(self.model_id)
        if spec is None:
            raise errors.model_not_found(self.model_id)
        # Only a CPU snapshot is taken without the GPU at hand; otherwise load straight onto it.
        device = "cpu" if deployment.snapshot == "cpu" else self._gpu()
        engine_settings = EngineSettings()
        self.models = ModelCache([spec], cache_dir=engine_settings.cache_dir, device=device, max_loaded=1,
                                 dtype=deployment.dtype_for(self.model_id),
                                 optimizations=Optimizations.from_settings(engine_settings))
        self.worker = Worker(self.models, png_parameters=engine_settings.png_parameters)
        try:
            model = self.models.get(self.model_id)
        except errors.APIError:
            log.error("%s is not loadable from the weights Volume; fetch it with: "
                      "modal run modal_app.py::download --models %s", self.model_id, self.model_id)
            raise
        if {"edit", "variation"} & set(spec.tasks):
            model.editor()  # made now (and snapshotted), not on the first edit
        log.info("%s loaded on %s", self.model_id, device)
        if device != "cpu":
            warm_up(self.worker, spec)
            _keep_compiled_kernels()

    @modal.enter(snap=False)
    def serve(self) -> None:
        if deployment.snapshot == "cpu":
            device = self._gpu()
            if device != "cpu":
                self.models.move_to(device)  # a reload (after a failure) goes straight there too
                warm_up(self.worker, deployment.catalog()[self.model_id])
                _keep_compiled_kernels()
        # Modal bounds the inputs a container holds, so the queue never refuses one; the Job's
        # deadline, not a queue timeout, says when nobody waits any more.
        self.engine = LocalEngine(self.worker, EngineSettings(
            models=[self.model_id], preload=False, max_queue=deployment.gpu_max_inputs,
            queue_timeout_seconds=deployment.timeout))
        self.engine_started = False
        log.info("%s serving on %s", self.model_id, self.models.device)

    async def _engine(self) -> LocalEngine:
        if not self.engine_started:  # its queue's task lives on the loop that runs the methods
            self.engine_started = True
            await self.engine.start()
        return self.engine

    @modal.method()
    async def run(self, job: Job) -> list[bytes]:
        """The Job's images, encoded; compatible jobs waiting together share a pipeline call."""
        return await (await self._engine()).run(job)

    @modal.method()
    async def stream(self, job: Job) -> AsyncIterator[StreamStarted | ImageEvent]:
        """This call's id (for the front to cancel it by), then the Job as events."""
        yield StreamStarted(modal.current_function_call_id())
        async for event in (await self._engine()).stream(job):
            yield event

    @modal.exit()
    async def stop(self) -> None:
        if self.engine_started:
            await self.engine.close()


def gpu_class(model_id: str) -> type:
    """The Modal class serving `model_id`, declared on the app the first time it is asked for."""
    name = deployment.class_name(model_id)
    if name not in globals():
        # A module-level name: the container finds its class by it (getattr on this module).
        cls = type(name, (ImageWorker,), {"model_id": model_id, "__module__": __name__, "__qualname__": name})
        gpus = deployment.gpus_for(model_id)
        globals()[name] = app.cls(
            image=gpu_image,
            gpu=gpus if len(gpus) > 1 else gpus[0],
            cpu=deployment.cpu,
            memory=deployment.memory_mib_for(model_id),
            region=deployment.regions or None,
            volumes={WEIGHTS_DIR: weights},
            env=GPU_ENV,
            enable_memory_snapshot=SNAPSHOTS,
            experimental_options={"enable_gpu_snapshot": True} if deployment.snapshot == "gpu" else None,
            scaledown_window=deployment.scaledown_window,
            min_containers=deployment.min_containers,
            max_containers=deployment.max_containers,
            buffer_containers=deployment.buffer_containers or None,
            timeout=deployment.timeout,
            startup_timeout=deployment.startup_timeout,
        )(modal.concurrent(max_inputs=deployment.gpu_max_inputs, target_inputs=deployment.gpu_target_inputs)(cls))
    return globals()[name]


for _model_id in deployment.models:
    gpu_class(_model_id)


# ## The web front
#
# The same app factory as `imagegen serve`, around a ModalEngine (jobs go to the GPU pools)
# and a Volume-backed temp-image store. One container takes many requests at once: they mostly
# wait on GPUs. It refuses to start without API keys unless Modal's proxy auth guards it.


def create_web_app(settings: ServerSettings, gpu_classes: Callable[[str], Any], volume: VolumeFiles,
                   config: ModalDeployment, **engine_options: Any) -> FastAPI:
    """The deployed app, from its parts: what `web` serves, and what the tests drive.

    `gpu_classes` gives each served model's GPU class; `engine_options` reach the ModalEngine."""
    if not settings.api_keys and not config.proxy_auth:
        raise RuntimeError(
            f"IMAGEGEN_API_KEYS is empty: refusing to serve an open API on a public URL. Put keys in the "
            f"Modal Secret '{config.secret_name}' (modal secret create {config.secret_name} "
            "IMAGEGEN_API_KEYS=sk-...), or deploy with IMAGEGEN_MODAL_PROXY_AUTH=1 to require Modal "
            "proxy-auth tokens instead."
        )
    served = ServedModels.from_names(config.models, settings.model_aliases, settings.lora_dir, config.extra_models)
    engine = ModalEngine({spec.id: gpu_classes(spec.id) for spec in served.specs},
                         deadline_seconds=config.deadline_seconds, **engine_options)
    store = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, volume,
                             max_bytes=settings.storage_max_bytes)
    return create_app(settings, engine, store, served)


@app.function(
    image=web_image,
    # The weights Volume too: the LoRA files live there, and the front checks a request's LoRAs
    # against them before a GPU is woken (the Job carries their paths, the same in both).
    volumes={IMAGES_DIR: images, WEIGHTS_DIR: weights},
    secrets=[secret],
    env=deployment.forwarded_env(),
    timeout=180,  # the engine answers by deadline_seconds; this only bounds a stuck upload
)
@modal.concurrent(max_inputs=deployment.web_max_inputs)
@modal.asgi_app(requires_proxy_auth=deployment.proxy_auth)
def web() -> FastAPI:
    return create_web_app(ServerSettings(storage_dir=IMAGES_DIR, lora_dir=LORA_DIR), gpu_class,
                          ModalVolumeFiles(images), deployment)


# ## Cleanup
#
# Reads already refuse expired images; this deletes their files. It runs alone in its
# container, so here (unlike in the busy front) a `reload()` to see every container's
# images is safe.


@app.function(image=web_image, volumes={IMAGES_DIR: images}, env=deployment.forwarded_env(),
              schedule=modal.Period(minutes=10))
def cleanup() -> int:
    images.reload()
    settings = ServerSettings(storage_dir=IMAGES_DIR)
    removed = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, ModalVolumeFiles(images)).sweep()
    log.info("deleted %d expired temp images", removed)
    return removed


# ## Weights
#
# `modal run modal_app.py::download --models sdxl-turbo,flux-schnell` fetches the pinned
# revisions into the weights Volume before the first request needs them (the GPU containers
# never download). Gated models read HF_TOKEN from the Secret.


def fetch_weights(model_ids: list[str], cache_dir: Path) -> list[str]:
    """Each model's pinned weights into the hub cache (a tiny model is built into `cache_dir`)."""
    catalog = deployment.catalog()  # the models file's entries too
    unknown = [model_id for model_id in model_ids if model_id not in catalog]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}: not in the catalog ({', '.join(catalog)})")
    return [fetch(catalog[model_id], cache_dir) for model_id in model_ids]


@app.function(image=gpu_image, volumes={WEIGHTS_DIR: weights}, secrets=[secret], timeout=3600,
              env={**deployment.forwarded_env(), "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"})
def download(models: str = "") -> list[str]:
    chosen = [name.strip() for name in models.split(",") if name.strip()] or deployment.models
    fetched = fetch_weights(chosen, EngineSettings().cache_dir)
    weights.commit()
    for path in fetched:
        log.info("ready: %s", path)
    return fetched


# ## Smoke test
#
# `modal run modal_app.py::smoke --key sk-...` checks the deployed endpoint end to end through
# the official `openai` SDK: list models, generate (URL and b64_json), fetch the URL, edit with
# a mask. `python scripts/smoke.py --url … --key …` does the same without Modal.


@app.local_entrypoint()
def smoke(key: str = "", model: str = "", url: str = "") -> None:
    from scripts.smoke import run_smoke

    base_url = url or modal.Function.from_name(deployment.app_name, "web").get_web_url()
    if not run_smoke(base_url, key or os.environ.get("IMAGEGEN_API_KEY", ""), model or None):
        raise SystemExit(1)
