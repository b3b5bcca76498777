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

Nothing here is business logic: this file declares what Modal deploys (images, Volumes, the
Secret, the App, the classes and functions), and their bodies call `handlers/hosts/modal/`, the
Modal room, which composes `handlers` (the HTTP service) and `pipelines` (the Worker) exactly as
local mode does. `python scripts/deploy.py` wraps the whole routine.
"""

import logging
import os
from collections.abc import AsyncIterator

import modal
from fastapi import FastAPI

from handlers.hosts.modal.cancellations import Cancellations
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.engine import StreamStarted
from handlers.hosts.modal.gpu import GpuModel, fetch_weights
from handlers.hosts.modal.job_store import ModalDictJobStore
from handlers.hosts.modal.volume import ModalVolumeFiles
from handlers.hosts.modal.web import create_web_app, sweep_expired
from handlers.settings import ServerSettings
from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.settings import EngineSettings

log = logging.getLogger("imagegen")
if not modal.is_local():  # in a container, the log is stdout/stderr: say what loaded where
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

# ## Deploy-time knobs
#
# `ModalDeployment` reads IMAGEGEN_MODELS and IMAGEGEN_MODAL_* when `modal deploy` imports this file
# (`scripts/deploy.py` checks them first); the containers that need them at run time get them
# forwarded. Defaults: scale to zero, stay warm 5 minutes, answer before Modal's 150 s web limit.

deployment = ModalDeployment()
app = modal.App(deployment.app_name)

# ## Container images
#
# The GPU image has the model side, pinned to the versions the test suite runs. torch comes
# from PyTorch's CUDA 13.0 index, chosen rather than implied by whatever PyPI's default build
# is: its CUDA runtime arrives as pip packages (no CUDA base image), and it needs driver R580 or
# newer (NVIDIA's CUDA 13.0 release notes: >= 580.65.06), which Modal's hosts run; each GPU
# container logs its GPU, driver and CUDA runtime as it starts (pipelines/cuda_report.py).
# The web image has only what `handlers` imports (no torch), so the front cold-starts fast. Both
# carry our two packages' Python files and the playground's files (`add_local_python_source` ships
# .py files only unless told otherwise; `ignore` is matched against paths inside each package).

WEB_PACKAGES = (
    "fastapi==0.165.0",
    "pydantic==2.14.3",
    "pydantic-settings==2.16.3",
    "python-multipart==0.0.34",
    "pillow==13.0.0",
    "prometheus-client==0.26.0",
    "fastapi-offline==1.7.7",
    "mcp==2.3.0",
    # Content credentials: the front signs every final image (IMAGEGEN_C2PA_CERT/KEY in the Secret).
    "c2pa-python==0.38.1",
    "cryptography==50.0.2",
)
TORCH = "torch==2.13.0"
TORCHVISION = "torchvision==0.28.0"  # torch 2.13.0's (its METADATA: `Requires-Dist: torch (==2.13.0)`)
TORCH_INDEX = "https://download.pytorch.org/whl/cu130"
MODEL_PACKAGES = (
    "diffusers==0.42.1",
    "transformers==5.23.0",
    "accelerate==1.15.0",
    "safetensors==0.8.0",
    "huggingface_hub==2.4.0",
    "peft==0.21.2",
    "isal==1.9.1",  # the GPU side encodes the PNGs (pipelines/encoding.py)
)
# What BiRefNet's code imports besides torch and torchvision (the `matting` extra): `birefnet` serves.
MATTING_PACKAGES = ("timm==1.0.31", "kornia==0.9.0", "einops==0.8.2")
WEIGHTS_DIR = "/weights"
# LoRA files, on the weights Volume: `modal volume put imagegen-weights pixel.safetensors /loras/`.
LORA_DIR = f"{WEIGHTS_DIR}/loras"
IMAGES_DIR = "/images"
SOURCES = ~modal.FilePatternMatcher("**/*.py", "playground/*")  # what is *not* ignored

gpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    # Its own step: with PyTorch's index as an extra one, uv would take every package that index
    # also mirrors from there (its first-index rule). Pins repeated next: timm's torchvision stays.
    .uv_pip_install(TORCH, TORCHVISION, index_url=TORCH_INDEX)
    .uv_pip_install(TORCH, TORCHVISION, *MODEL_PACKAGES, *MATTING_PACKAGES, *WEB_PACKAGES)
    # The hub cache lives on the weights Volume: downloaded once, read by every container.
    # Inductor compiles in this process, not in worker processes a snapshot would not hold (as
    # modal-examples' 06_gpu_and_ml/llm-serving/sglang_snapshot.py sets it, for GPU snapshots).
    .env({"HF_HOME": f"{WEIGHTS_DIR}/hf", "HF_XET_HIGH_PERFORMANCE": "1", "TORCHINDUCTOR_COMPILE_THREADS": "1"})
    .add_local_python_source("handlers", "pipelines", ignore=SOURCES)
)
web_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*WEB_PACKAGES)
    .add_local_python_source("handlers", "pipelines", ignore=SOURCES)
)

# ## Volumes and the Secret
#
# Weights: the Hugging Face cache (and the built tiny models), filled by `download` below. Temp
# images: a v2 Volume (no file-count limit), written by the front, swept by `cleanup`.
# The Secret holds IMAGEGEN_API_KEYS (and HF_TOKEN for gated models such as FLUX.1-schnell).

weights = modal.Volume.from_name(f"{deployment.app_name}-weights", create_if_missing=True)
images = modal.Volume.from_name(f"{deployment.app_name}-images", create_if_missing=True, version=2)
# Async jobs' records: one Dict that every front container reads and writes.
job_records = modal.Dict.from_name(f"{deployment.app_name}-jobs", create_if_missing=True)
secret = modal.Secret.from_name(deployment.secret_name)
# The calls nobody waits for, by cancel key: written by the front, read by the GPU containers
# before and while they run a job (handlers/hosts/modal/cancellations.py).
cancelled = modal.Dict.from_name(f"{deployment.app_name}-cancelled", create_if_missing=True)
signing = modal.Dict.from_name(f"{deployment.app_name}-signing", create_if_missing=True)  # fronts' one C2PA identity

# ## The GPU classes: one warm pool per model
#
# Each served model gets its own class (`ImageWorker_flux_schnell`, …), so each scales on its own
# and asks for what it needs: its GPUs, preferred first (Modal falls back down the list when the
# first is scarce), the host RAM its weights pass through (the catalog's `host_memory_gib`),
# CPU cores for encoding, the regions allowed. The pipeline is loaded once per container and
# stays in memory until the container has been idle for `scaledown_window` seconds. A container
# holds up to `gpu_max_inputs` inputs, batched by the same LocalEngine as `imagegen serve`; the
# autoscaler adds containers past `gpu_target_inputs`. Cold starts restore a snapshot, by
# IMAGEGEN_MODAL_SNAPSHOT ("gpu", the default, "cpu" or "off"; handlers/hosts/modal/gpu.py), for
# deployed apps only (`modal run` starts cold every time).

SNAPSHOTS = deployment.snapshot != "off"
# What a GPU container sees of the deployment: the same settings `modal deploy` read here, so
# its decisions (a model's GPUs, hence its dtype; the snapshot mode; the app's name) are the
# deploy-time ones. Weights come from the Volume only: a missing model fails at once, naming itself.
# Inductor's compiled kernels go to the weights Volume too (committed after the warm-up that
# compiles them), so a container that cannot restore a snapshot does not compile again.
GPU_ENV = {
    "IMAGEGEN_COMPILE_CACHE_DIR": f"{WEIGHTS_DIR}/compile-cache",
    **deployment.forwarded_env(),
    "HF_HUB_OFFLINE": "1",
    "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen",
}


class ImageWorker:
    """The GPU side of one model (the subclasses below fix `model_id`): Modal's hooks and methods,
    each a call to the room's `GpuModel`. The methods are async, so Modal cancels one input's task."""

    model_id: str

    @modal.enter(snap=SNAPSHOTS)
    def load(self) -> None:
        self.gpu_model = GpuModel(
            self.model_id, deployment, commit_weights=weights.commit, cancellations=Cancellations(cancelled)
        )
        self.gpu_model.load()

    @modal.enter(snap=False)
    def serve(self) -> None:
        self.gpu_model.serve()

    @modal.method()
    async def run(self, job: Job, cancel_key: str | None = None, report_steps: bool = False) -> Rendered:
        return await self.gpu_model.run(job, cancel_key, report_steps)

    @modal.method()
    async def stream(self, job: Job, cancel_key: str | None = None) -> AsyncIterator[StreamStarted | ImageEvent]:
        async for item in self.gpu_model.stream(job, cancel_key):
            yield item

    @modal.method()
    async def describe(self) -> dict[str, object]:
        return await self.gpu_model.describe()

    @modal.exit()
    async def stop(self) -> None:
        await self.gpu_model.stop()


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
# The same app factory as `imagegen serve`, around a ModalEngine (jobs go to the GPU pools) and a
# Volume-backed temp-image store (handlers/hosts/modal/web.py). One container takes many requests
# at once (they mostly wait on GPUs); it refuses to start without API keys unless proxy auth guards it.


@app.function(
    image=web_image,
    # The weights Volume too: the LoRA files live there, and the front checks a request's LoRAs
    # against them before a GPU is woken (the Job carries their paths, the same in both).
    volumes={IMAGES_DIR: images, WEIGHTS_DIR: weights},
    secrets=[secret],
    env=deployment.forwarded_env(),
    timeout=deployment.web_timeout,  # the engine answers by deadline_seconds, past the 150 s window
)
@modal.concurrent(max_inputs=deployment.web_max_inputs)
@modal.asgi_app(requires_proxy_auth=deployment.proxy_auth)
def web() -> FastAPI:
    return create_web_app(
        ServerSettings(storage_dir=IMAGES_DIR, lora_dir=LORA_DIR),
        gpu_class,
        ModalVolumeFiles(images),
        deployment,
        cancellations=Cancellations(cancelled),
        job_store=ModalDictJobStore(job_records),
        signing_store=signing,
    )


# ## Cleanup
#
# Reads already refuse expired images; this deletes their files. Alone in its container, it
# can `reload()` to see every container's images (unsafe in the busy front).


@app.function(
    image=web_image, volumes={IMAGES_DIR: images}, env=deployment.forwarded_env(), schedule=modal.Period(minutes=10)
)
def cleanup() -> int:
    images.reload()
    return sweep_expired(ServerSettings(storage_dir=IMAGES_DIR), ModalVolumeFiles(images))


# ## Weights
#
# `modal run modal_app.py::download --models sdxl-turbo,flux-schnell` fetches the pinned
# revisions into the weights Volume before the first request needs them (the GPU containers
# never download). Gated models read HF_TOKEN from the Secret.


@app.function(
    image=gpu_image,
    volumes={WEIGHTS_DIR: weights},
    secrets=[secret],
    timeout=3600,
    env={**deployment.forwarded_env(), "IMAGEGEN_CACHE_DIR": f"{WEIGHTS_DIR}/imagegen"},
)
def download(models: str = "") -> list[str]:
    chosen = [name.strip() for name in models.split(",") if name.strip()] or deployment.models
    fetched = fetch_weights(deployment, chosen, EngineSettings().cache_dir)
    weights.commit()
    for path in fetched:
        log.info("ready: %s", path)
    return fetched


# ## Smoke test
#
# `modal run modal_app.py::smoke --key sk-...` checks the deployed endpoint end to end through the
# `openai` SDK (models, generate by URL and b64_json, an edit with a mask); `scripts/smoke.py` too.


@app.local_entrypoint()
def smoke(key: str = "", model: str = "", url: str = "") -> None:
    from scripts.smoke import run_smoke

    base_url = url or modal.Function.from_name(deployment.app_name, "web").get_web_url()
    if not run_smoke(base_url, key or os.environ.get("IMAGEGEN_API_KEY", ""), model or None):
        raise SystemExit(1)
