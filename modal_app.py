"""# imagegen on Modal: an OpenAI-compatible image API on serverless GPUs

`modal deploy modal_app.py` gives a public, key-protected endpoint that any OpenAI SDK can point
at. Behind it:

- a small CPU web function serving the same FastAPI app as `imagegen serve` (no torch in it, so
  it starts in a second or two),
- one GPU class, parameterised by model id, so each model is its own autoscaling pool that keeps
  its pipeline warm in memory between requests,
- a Volume with the weights (downloaded once, never per container) and a Volume with the temp
  images behind returned URLs, cleaned up on a schedule.

Nothing here is business logic: it composes `handlers` (the HTTP service) and `pipelines` (the
Worker), exactly as local mode does. `python scripts/deploy.py` wraps the whole routine.
"""

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import modal
from fastapi import FastAPI

from handlers.app import create_app
from handlers.hosts.modal_deployment import ModalDeployment
from handlers.settings import ServerSettings
from handlers.stores.volume import ModalVolumeFiles, VolumeFiles, VolumeImageStore
from pipelines.contract import errors
from pipelines.contract.catalog import CATALOG
from pipelines.contract.job import ImageEvent, Job
from pipelines.contract.served import ServedModels
from pipelines.modal_engine import ModalEngine
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
                  "safetensors==0.8.0", "huggingface_hub==2.4.0")
WEIGHTS_DIR = "/weights"
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
    from pipelines.model_cache import ModelCache
    from pipelines.optimize import Optimizations
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

# ## The GPU class: one warm pool per model
#
# `model_id` is a `modal.parameter`, so `ImageWorker(model_id="flux-schnell")` and
# `ImageWorker(model_id="sdxl-turbo")` scale independently; the front picks each model's GPU
# from the catalog with `with_options(gpu=…)`. The pipeline is loaded once per container and
# stays in memory until the container has been idle for `scaledown_window` seconds.
#
# With memory snapshots, the CPU half of a cold start (importing torch, reading the weights
# into memory) happens once per deployment: `snap=True` loads to CPU and Modal snapshots the
# container; later cold starts restore it and only run `snap=False`, the move to the GPU.


# What a GPU container sees of the deployment: the same settings `modal deploy` read here, so
# its decisions (a model's GPU, hence its dtype; the app's name) are the deploy-time ones.
# Weights come from the Volume only: a missing model fails at once, naming itself.
GPU_ENV = {**deployment.forwarded_env(), "HF_HUB_OFFLINE": "1", "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"}


@app.cls(
    image=gpu_image,
    gpu=deployment.gpu_for(deployment.models[0]),
    volumes={WEIGHTS_DIR: weights},
    env=GPU_ENV,
    enable_memory_snapshot=True,
    scaledown_window=deployment.scaledown_window,
    min_containers=deployment.min_containers,
    max_containers=deployment.max_containers,
    timeout=deployment.timeout,
    startup_timeout=deployment.startup_timeout,
)
@modal.concurrent(max_inputs=deployment.gpu_max_inputs)
class ImageWorker:
    # A real type, not a string: Modal reads it to encode the parameter (hence no
    # `from __future__ import annotations` in this file).
    model_id: str = modal.parameter()

    @modal.enter(snap=True)
    def load_to_cpu(self) -> None:
        # A failed load raises: no snapshot of a container without its model, and the caller
        # gets the Worker's error (model_load_failed, naming the model) instead of a hang.
        spec = CATALOG.get(self.model_id)
        if spec is None:
            raise errors.model_not_found(self.model_id)
        # Loaded in the GPU's dtype, so the snapshot holds half the bytes of float32.
        self.models = ModelCache([spec], cache_dir=EngineSettings().cache_dir, device="cpu", max_loaded=1,
                                 dtype=deployment.dtype_for(self.model_id),
                                 optimizations=Optimizations.from_settings(EngineSettings()))
        self.worker = Worker(self.models, png_parameters=EngineSettings().png_parameters)
        try:
            self.models.get(self.model_id)
        except errors.APIError:
            log.error("%s is not loadable from the weights Volume; fetch it with: "
                      "modal run modal_app.py::download --models %s", self.model_id, self.model_id)
            raise
        log.info("%s loaded on cpu", self.model_id)

    @modal.enter(snap=False)
    def move_to_gpu(self) -> None:
        device = pick_device("auto")
        if device == "cpu" and not modal.is_local():
            # A GPU class that serves on the CPU times out on every request: fail the container,
            # and Modal starts another (on `.local()`, a developer's CPU, it serves anyway).
            attached = "is attached but torch sees none" if Path("/dev/nvidiactl").exists() else "is not attached"
            raise RuntimeError(f"{self.model_id}: the container's GPU {attached}; refusing to serve on the CPU")
        if device != "cpu":
            self.models.move_to(device)  # a reload (after a failure) goes straight there too
        log.info("%s serving on %s", self.model_id, device)

    @modal.method()
    def run(self, job: Job) -> list[bytes]:
        """The Job's images, encoded. Concurrent calls queue inside the Worker, one run at a time."""
        return self.worker.run(job)

    @modal.method()
    def stream(self, job: Job) -> Iterator[ImageEvent]:
        """The Job as events (previews, then each image); closing it stops the remaining steps."""
        yield from self.worker.stream(job)


# ## The web front
#
# The same app factory as `imagegen serve`, around a ModalEngine (jobs go to the GPU pools)
# and a Volume-backed temp-image store. One container takes many requests at once: they mostly
# wait on GPUs. It refuses to start without API keys unless Modal's proxy auth guards it.


def create_web_app(settings: ServerSettings, worker_cls: object, volume: VolumeFiles,
                   config: ModalDeployment) -> FastAPI:
    """The deployed app, from its parts: what `web` serves, and what the tests drive."""
    if not settings.api_keys and not config.proxy_auth:
        raise RuntimeError(
            f"IMAGEGEN_API_KEYS is empty: refusing to serve an open API on a public URL. Put keys in the "
            f"Modal Secret '{config.secret_name}' (modal secret create {config.secret_name} "
            "IMAGEGEN_API_KEYS=sk-...), or deploy with IMAGEGEN_MODAL_PROXY_AUTH=1 to require Modal "
            "proxy-auth tokens instead."
        )
    served = ServedModels.from_names(config.models, settings.model_aliases)
    gpus = {spec.id: config.gpu_for(spec.id) for spec in served.specs}
    engine = ModalEngine(worker_cls, gpus, deadline_seconds=config.deadline_seconds)
    store = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, volume,
                             max_bytes=settings.storage_max_bytes)
    return create_app(settings, engine, store, served)


@app.function(
    image=web_image,
    volumes={IMAGES_DIR: images},
    secrets=[secret],
    env=deployment.forwarded_env(),
    timeout=180,  # the engine answers by deadline_seconds; this only bounds a stuck upload
)
@modal.concurrent(max_inputs=deployment.web_max_inputs)
@modal.asgi_app(requires_proxy_auth=deployment.proxy_auth)
def web() -> FastAPI:
    return create_web_app(ServerSettings(storage_dir=IMAGES_DIR), ImageWorker, ModalVolumeFiles(images), deployment)


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
    unknown = [model_id for model_id in model_ids if model_id not in CATALOG]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}: not in the catalog ({', '.join(CATALOG)})")
    return [fetch(CATALOG[model_id], cache_dir) for model_id in model_ids]


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
