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
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.app import create_app
from handlers.errors import APIError
from handlers.job import ImageEvent, Job
from handlers.modal_engine import ModalEngine
from handlers.settings import Settings
from handlers.volume_store import ModalVolumeFiles, VolumeFiles, VolumeImageStore
from pipelines.catalog import CATALOG, ServedModels

log = logging.getLogger("imagegen")
if not modal.is_local():  # in a container, the log is stdout/stderr: say what loaded where
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# ## Deploy-time knobs
#
# Read from the environment when `modal deploy` imports this file, and forwarded to the
# containers that need them at run time. The defaults suit an interactive API: scale to zero,
# stay warm five minutes after the last request, answer before Modal's 150 s web limit.

# Modal's GPU types (a ":N" suffix asks for N of them). Checked at deploy time, because a typo
# would otherwise surface only when the first request for that model fails.
GPU_TYPES = ("T4", "L4", "A10", "A10G", "L40S", "A100", "A100-40GB", "A100-80GB", "H100", "H100!", "H200", "B200")


class ModalDeployment(BaseSettings):
    """How this app is deployed (IMAGEGEN_MODAL_*; the models are IMAGEGEN_MODELS, as locally)."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_MODAL_", extra="ignore", populate_by_name=True)

    models: str = Field("sdxl-turbo", validation_alias="IMAGEGEN_MODELS")
    app_name: str = "imagegen"
    secret_name: str = "imagegen"
    gpus: str = ""  # "model=GPU,…": overrides the catalog's GPU for a model, e.g. flux-schnell=H200
    min_containers: int = Field(0, ge=0)  # per model: warm GPUs kept even when idle (billed)
    max_containers: int = Field(4, ge=1)  # per model: the cost ceiling under load
    scaledown_window: int = Field(300, ge=2, le=3600)  # idle seconds before a warm GPU goes
    timeout: int = Field(300, ge=10, le=86400)  # seconds one job may run on a GPU
    startup_timeout: int = Field(1200, ge=10, le=86400)  # first start: weights from the Volume
    gpu_max_inputs: int = Field(4, ge=1, le=1000)  # queued in a warm container, not a cold one
    web_max_inputs: int = Field(500, ge=1, le=1000)
    deadline_seconds: float = Field(140.0, gt=0, lt=150)
    proxy_auth: bool = False  # let Modal's proxy auth guard the endpoint instead of API keys

    @model_validator(mode="after")
    def _check(self) -> "ModalDeployment":
        unknown = [name for name in self.model_ids if name not in CATALOG]
        if unknown or not self.model_ids:
            raise ValueError(f"IMAGEGEN_MODELS must name catalog models ({', '.join(CATALOG)}); got {self.models!r}")
        for model_id, gpu in self.gpu_overrides.items():
            if model_id not in self.model_ids:
                raise ValueError(f"IMAGEGEN_MODAL_GPUS names {model_id!r}, which is not served ({self.models})")
            if gpu.split(":")[0].upper() not in GPU_TYPES:
                raise ValueError(f"IMAGEGEN_MODAL_GPUS: unknown GPU {gpu!r} for {model_id} "
                                 f"(known: {', '.join(GPU_TYPES)})")
        if self.min_containers > self.max_containers:
            raise ValueError(f"min_containers ({self.min_containers}) exceeds max_containers ({self.max_containers})")
        return self

    @property
    def model_ids(self) -> list[str]:
        return [name.strip() for name in self.models.split(",") if name.strip()]

    @property
    def gpu_overrides(self) -> dict[str, str]:
        pairs = [item.split("=", 1) for item in self.gpus.split(",") if item.strip()]
        if any(len(pair) != 2 or not pair[1].strip() for pair in pairs):
            raise ValueError(f"IMAGEGEN_MODAL_GPUS must be model=GPU pairs, got {self.gpus!r}")
        return {model.strip(): gpu.strip() for model, gpu in pairs}

    def gpu_for(self, model_id: str) -> str:
        return self.gpu_overrides.get(model_id) or CATALOG[model_id].gpu

    def forwarded_env(self) -> dict[str, str]:
        """What the containers must see at run time: the served models and the service settings
        given at deploy time. API keys are not among them: they live in the Secret."""
        service = ("IMAGEGEN_MODEL_ALIASES", "IMAGEGEN_PUBLIC_URL", "IMAGEGEN_IMAGE_TTL_SECONDS",
                   "IMAGEGEN_MAX_PROMPT_CHARS")
        env = {name: os.environ[name] for name in service if name in os.environ}
        env.update({name: value for name, value in os.environ.items() if name.startswith("IMAGEGEN_MODAL_")})
        env["IMAGEGEN_MODELS"] = ",".join(self.model_ids)
        return env


deployment = ModalDeployment()
app = modal.App(deployment.app_name)

# ## Container images
#
# The GPU image has the model side, pinned to the versions the test suite runs. PyPI's Linux
# torch wheels are the CUDA builds (the CUDA runtime arrives as pip packages), so no CUDA base
# image is needed. The web image has only what `handlers` imports: no torch, diffusers or
# transformers, so the front cold-starts fast. Both carry our two packages.

WEB_PACKAGES = ("fastapi==0.165.0", "pydantic==2.14.3", "pydantic-settings==2.16.3", "python-multipart==0.0.34",
                "pillow==13.0.0")
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
    from pipelines.weights import weights_source
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


@app.cls(
    image=gpu_image,
    gpu=deployment.gpu_for(deployment.model_ids[0]),
    volumes={WEIGHTS_DIR: weights},
    # Weights come from the Volume only: a missing model fails at once, naming itself.
    env={"HF_HUB_OFFLINE": "1", "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"},
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
            raise APIError(404, f"The model '{self.model_id}' is not in the catalog.", param="model",
                           code="model_not_found")
        # Loaded in the GPU's dtype (T4s lack fast bf16), so the snapshot holds half the bytes.
        dtype = "float16" if deployment.gpu_for(self.model_id) == "T4" else "bfloat16"
        self.worker = Worker([spec], cache_dir=Settings().cache_dir, device="cpu", max_loaded=1, dtype=dtype)
        try:
            self.worker.load(self.model_id)
        except APIError:
            log.error("%s is not loadable from the weights Volume; fetch it with: "
                      "modal run modal_app.py::download --models %s", self.model_id, self.model_id)
            raise
        log.info("%s loaded on cpu", self.model_id)

    @modal.enter(snap=False)
    def move_to_gpu(self) -> None:
        device = pick_device("auto")
        if device != "cpu":
            self.worker.move_to(device)  # a reload (after a failure) goes straight there too
        elif Path("/dev/nvidiactl").exists():
            # torch caches "no CUDA" if it was asked before the snapshot, when no GPU is attached.
            log.error("%s: a GPU is attached but torch sees none; serving on CPU", self.model_id)
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


def create_web_app(settings: Settings, worker_cls: object, volume: VolumeFiles, config: ModalDeployment) -> FastAPI:
    """The deployed app, from its parts: what `web` serves, and what the tests drive."""
    if not settings.keys and not config.proxy_auth:
        raise RuntimeError(
            f"IMAGEGEN_API_KEYS is empty: refusing to serve an open API on a public URL. Put keys in the "
            f"Modal Secret '{config.secret_name}' (modal secret create {config.secret_name} "
            "IMAGEGEN_API_KEYS=sk-...), or deploy with IMAGEGEN_MODAL_PROXY_AUTH=1 to require Modal "
            "proxy-auth tokens instead."
        )
    served = ServedModels.from_names(settings.model_names, settings.alias_map)
    gpus = {spec.id: config.gpu_for(spec.id) for spec in served.specs}
    engine = ModalEngine(worker_cls, gpus, deadline_seconds=config.deadline_seconds)
    store = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, volume)
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
    return create_web_app(Settings(storage_dir=IMAGES_DIR), ImageWorker, ModalVolumeFiles(images), deployment)


# ## Cleanup
#
# Reads already refuse expired images; this deletes their files. It runs alone in its
# container, so here (unlike in the busy front) a `reload()` to see every container's
# images is safe.


@app.function(image=web_image, volumes={IMAGES_DIR: images}, env=deployment.forwarded_env(),
              schedule=modal.Period(minutes=10))
def cleanup() -> int:
    images.reload()
    settings = Settings(storage_dir=IMAGES_DIR)
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
    from diffusers import DiffusionPipeline

    fetched = []
    for model_id in model_ids:
        if model_id not in CATALOG:
            raise ValueError(f"unknown model {model_id!r}: not in the catalog ({', '.join(CATALOG)})")
        spec = CATALOG[model_id]
        source, revision = weights_source(spec, cache_dir)
        if spec.source.startswith("hub:"):
            # Only the files a pipeline load reads, at the pinned commit.
            source = DiffusionPipeline.download(source, revision=revision)
        fetched.append(str(source))
    return fetched


@app.function(image=gpu_image, volumes={WEIGHTS_DIR: weights}, secrets=[secret], timeout=3600,
              env={**deployment.forwarded_env(), "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"})
def download(models: str = "") -> list[str]:
    chosen = [name.strip() for name in models.split(",") if name.strip()] or deployment.model_ids
    fetched = fetch_weights(chosen, Settings().cache_dir)
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
