"""How imagegen is deployed on Modal: the `IMAGEGEN_MODAL_*` settings, checked offline.

Read by `modal_app.py` when `modal deploy` imports it, and by `scripts/deploy.py` to check an
operator's choices before anything is created. Importing this module creates nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers.hosts.modal.engine import DEFAULT_DEADLINE_SECONDS
from pipelines.contract.catalog import CATALOG, ModelSpec
from pipelines.contract.config import comma_list, name_pairs
from pipelines.contract.models_file import read_models_file, read_models_text

# Modal's GPU types (a ":N" suffix asks for N of them). Checked at deploy time, because a typo
# would otherwise surface only when the first request for that model fails.
GPU_TYPES = ("T4", "L4", "A10", "A10G", "L40S", "A100", "A100-40GB", "A100-80GB", "H100", "H100!", "H200", "B200")
# GPUs without fast bfloat16: a model whose list names one loads in float16 everywhere.
NO_BFLOAT16 = ("T4",)

Snapshot = Literal["gpu", "cpu", "off"]

# Settings of the service and of the GPU containers' engines, forwarded as they were at deploy time.
SERVICE_ENV = (
    "IMAGEGEN_MODEL_ALIASES",
    "IMAGEGEN_PUBLIC_URL",
    "IMAGEGEN_C2PA",
    "IMAGEGEN_IMAGE_TTL_SECONDS",
    "IMAGEGEN_MAX_PROMPT_CHARS",
    "IMAGEGEN_MAX_BATCH_IMAGES",
    "IMAGEGEN_MAX_BATCH_PIXELS",
    "IMAGEGEN_BATCH_WAIT_MS",
    "IMAGEGEN_PNG_PARAMETERS",
    "IMAGEGEN_MATTING_MODEL",
    # The GPU optimisations (pipelines/optimize.py), decided at deploy time like the rest.
    "IMAGEGEN_FUSE_QKV",
    "IMAGEGEN_CHANNELS_LAST",
    "IMAGEGEN_ATTENTION_BACKEND",
    "IMAGEGEN_TORCH_COMPILE",
    "IMAGEGEN_COMPILE_MODE",
    "IMAGEGEN_COMPILE_CACHE_DIR",
    "IMAGEGEN_PROMPT_CACHE_SIZE",
    "IMAGEGEN_VAE_TILE_ABOVE",
    "IMAGEGEN_QUANTIZE",
    "IMAGEGEN_STEP_CACHE",
    "IMAGEGEN_STEP_CACHE_THRESHOLD",
)


def _gpu_lists(value: Any) -> Any:
    """`"flux-schnell=H100|A100-80GB"` → `{"flux-schnell": ["H100", "A100-80GB"]}`: the GPUs a model
    may run on, in the order Modal should try them."""
    pairs = name_pairs(value, "model=GPU or model=GPU|GPU|…")
    if not isinstance(pairs, dict):
        return pairs
    return {
        model: [gpu.strip() for gpu in gpus.split("|")] if isinstance(gpus, str) else gpus
        for model, gpus in pairs.items()
    }


def _numbers(value: Any) -> Any:
    return name_pairs(value, "model=GiB")


class ModalDeployment(BaseSettings):
    """How this app is deployed (IMAGEGEN_MODAL_*; the models are IMAGEGEN_MODELS, as locally)."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_MODAL_", extra="ignore", populate_by_name=True)

    models: Annotated[list[str], NoDecode, BeforeValidator(comma_list)] = Field(
        ["sdxl-turbo"], validation_alias="IMAGEGEN_MODELS"
    )
    # The operator's own catalog entries (as locally). Read at deploy time; the containers get
    # its text (IMAGEGEN_MODELS_TOML), so they see the entries the deploy saw, file or no file.
    # On Modal an entry's weights come from the hub (pinned) into the weights Volume.
    models_file: Path | None = Field(None, validation_alias="IMAGEGEN_MODELS_FILE")
    models_toml: str | None = Field(None, validation_alias="IMAGEGEN_MODELS_TOML")
    app_name: str = "imagegen"
    secret_name: str = "imagegen"
    # "model=GPU|GPU…,…": a model's GPUs (fallbacks after the first), replacing the catalog's one,
    # e.g. flux-schnell=H100|A100-80GB
    gpus: Annotated[dict[str, list[str]], NoDecode, BeforeValidator(_gpu_lists)] = {}
    # Per GPU container: CPU cores (PNG encoding and the Worker's threads are CPU work; Modal's
    # default is 0.125 core) and host RAM, by default the catalog's `host_memory_gib`.
    cpu: float = Field(4.0, gt=0, le=64)
    memory_gib: Annotated[dict[str, int], NoDecode, BeforeValidator(_numbers)] = {}
    regions: Annotated[list[str], NoDecode, BeforeValidator(comma_list)] = []  # empty: anywhere
    min_containers: int = Field(0, ge=0)  # per model: warm GPUs kept even when idle (billed)
    max_containers: int = Field(4, ge=1)  # per model: the cost ceiling under load
    buffer_containers: int = Field(0, ge=0)  # per model: idle GPUs kept ready while the model is busy (billed)
    scaledown_window: int = Field(300, ge=2, le=3600)  # idle seconds before a warm GPU goes
    timeout: int = Field(600, ge=10, le=86400)  # seconds one job may run on a GPU (past the front's deadline)
    startup_timeout: int = Field(1200, ge=10, le=86400)  # first start: weights from the Volume
    # Inputs one GPU container holds at once (a burst of them shares pipeline calls: the batch
    # window), and the number the autoscaler aims at before it starts another container.
    gpu_max_inputs: int = Field(8, ge=1, le=1000)
    gpu_target_inputs: int | None = Field(4, ge=1, le=1000)
    # How a GPU container starts: "gpu" restores a snapshot taken with the model on the GPU and
    # warmed up; "cpu" restores one with the model in host RAM, then copies it to the GPU and
    # warms up; "off" loads from the weights Volume every time. Unset: "gpu".
    snapshot: Snapshot = "gpu"
    web_max_inputs: int = Field(500, ge=1, le=1000)
    # How long a synchronous request may take. Past Modal's 150 s web window the SDKs follow its 303
    # (handlers/hosts/modal/engine.py says why); Modal allows 20 of them, so at most 20 x 150 s.
    deadline_seconds: float = Field(DEFAULT_DEADLINE_SECONDS, gt=0, le=3000)
    proxy_auth: bool = False  # let Modal's proxy auth guard the endpoint instead of API keys

    _extra: tuple[ModelSpec, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _check(self) -> ModalDeployment:
        if self.models_toml:
            self._extra = read_models_text(self.models_toml, "IMAGEGEN_MODELS_TOML")
        elif self.models_file is not None:
            self._extra = read_models_file(self.models_file)
            self.models_toml = self.models_file.read_text()
        local = [spec.id for spec in self._extra if not spec.source.startswith(("hub:", "tiny:"))]
        if local:
            raise ValueError(
                f"the models file's {local[0]!r} loads from a path on this machine; on Modal a model's "
                'weights come from the hub (source = "hub:org/repo" with a revision)'
            )
        known = self.catalog()
        unknown = [name for name in self.models if name not in known]
        if unknown or not self.models:
            raise ValueError(
                f"IMAGEGEN_MODELS must name catalog models ({', '.join(known)}); got {','.join(self.models)!r}"
            )
        for variable, per_model in (("IMAGEGEN_MODAL_GPUS", self.gpus), ("IMAGEGEN_MODAL_MEMORY_GIB", self.memory_gib)):
            for model_id in per_model:
                if model_id not in self.models:
                    raise ValueError(f"{variable} names {model_id!r}, which is not served ({','.join(self.models)})")
        for model_id, gpus in self.gpus.items():
            for gpu in gpus:
                if gpu.split(":")[0].upper() not in GPU_TYPES:
                    raise ValueError(
                        f"IMAGEGEN_MODAL_GPUS: unknown GPU {gpu!r} for {model_id} (known: {', '.join(GPU_TYPES)})"
                    )
        for model_id, gib in self.memory_gib.items():
            if not 1 <= gib <= 1024:
                raise ValueError(f"IMAGEGEN_MODAL_MEMORY_GIB: {model_id}={gib} is not between 1 and 1024 GiB")
        if self.min_containers > self.max_containers:
            raise ValueError(f"min_containers ({self.min_containers}) exceeds max_containers ({self.max_containers})")
        if self.gpu_target_inputs is not None and self.gpu_target_inputs > self.gpu_max_inputs:
            raise ValueError(
                f"gpu_target_inputs ({self.gpu_target_inputs}) exceeds gpu_max_inputs ({self.gpu_max_inputs})"
            )
        return self

    def catalog(self) -> dict[str, ModelSpec]:
        """The built-in catalog and the models file's entries (which win on a shared id)."""
        return {**CATALOG, **{spec.id: spec for spec in self._extra}}

    @property
    def extra_models(self) -> tuple[ModelSpec, ...]:
        """The models file's entries, as ServedModels takes them."""
        return self._extra

    @property
    def web_timeout(self) -> int:
        """The web function's timeout: the deadline and a margin to answer by it (Modal counts a
        request's whole run against it, the time behind its 303s included)."""
        return int(self.deadline_seconds) + 60

    def gpus_for(self, model_id: str) -> list[str]:
        """The GPUs `model_id` may run on, preferred first (Modal falls back down the list)."""
        return self.gpus.get(model_id) or [self.catalog()[model_id].gpu]

    def dtype_for(self, model_id: str) -> str:
        """What the model loads in: float16 if any of its GPUs lacks fast bfloat16 (a T4), else
        bfloat16, so that whichever GPU Modal picks from the list runs it."""
        slow = any(gpu.split(":")[0].upper() in NO_BFLOAT16 for gpu in self.gpus_for(model_id))
        return "float16" if slow else "bfloat16"

    def memory_mib_for(self, model_id: str) -> int:
        """Host RAM one GPU container of `model_id` reserves, in MiB (what Modal's `memory=` takes)."""
        return 1024 * (self.memory_gib.get(model_id) or self.catalog()[model_id].host_memory_gib)

    def class_name(self, model_id: str) -> str:
        """The Modal class serving `model_id`: one class (one pool, its own GPUs and memory) per model."""
        return "ImageWorker_" + re.sub(r"[^0-9A-Za-z]", "_", model_id)

    def forwarded_env(self) -> dict[str, str]:
        """What the containers must see at run time: the served models and the service settings
        given at deploy time. API keys are not among them: they live in the Secret."""
        env = {name: os.environ[name] for name in SERVICE_ENV if name in os.environ}
        env.update({name: value for name, value in os.environ.items() if name.startswith("IMAGEGEN_MODAL_")})
        env["IMAGEGEN_MODELS"] = ",".join(self.models)
        if self.models_toml:
            env["IMAGEGEN_MODELS_TOML"] = self.models_toml
        return env
