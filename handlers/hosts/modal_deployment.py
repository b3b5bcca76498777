"""How imagegen is deployed on Modal: the `IMAGEGEN_MODAL_*` settings, checked offline.

Read by `modal_app.py` when `modal deploy` imports it, and by `scripts/deploy.py` to check an
operator's choices before anything is created. Importing this module creates nothing.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.contract.catalog import CATALOG
from pipelines.contract.config import comma_list, name_pairs
from pipelines.modal_engine import DEFAULT_DEADLINE_SECONDS

# Modal's GPU types (a ":N" suffix asks for N of them). Checked at deploy time, because a typo
# would otherwise surface only when the first request for that model fails.
GPU_TYPES = ("T4", "L4", "A10", "A10G", "L40S", "A100", "A100-40GB", "A100-80GB", "H100", "H100!", "H200", "B200")


class ModalDeployment(BaseSettings):
    """How this app is deployed (IMAGEGEN_MODAL_*; the models are IMAGEGEN_MODELS, as locally)."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_MODAL_", extra="ignore", populate_by_name=True)

    models: Annotated[list[str], NoDecode, BeforeValidator(comma_list)] = Field(
        ["sdxl-turbo"], validation_alias="IMAGEGEN_MODELS"
    )
    app_name: str = "imagegen"
    secret_name: str = "imagegen"
    # "model=GPU,…": overrides the catalog's GPU for a model, e.g. flux-schnell=H200
    gpus: Annotated[dict[str, str], NoDecode, BeforeValidator(lambda value: name_pairs(value, "model=GPU"))] = {}
    min_containers: int = Field(0, ge=0)  # per model: warm GPUs kept even when idle (billed)
    max_containers: int = Field(4, ge=1)  # per model: the cost ceiling under load
    scaledown_window: int = Field(300, ge=2, le=3600)  # idle seconds before a warm GPU goes
    timeout: int = Field(300, ge=10, le=86400)  # seconds one job may run on a GPU
    startup_timeout: int = Field(1200, ge=10, le=86400)  # first start: weights from the Volume
    gpu_max_inputs: int = Field(4, ge=1, le=1000)  # queued in a warm container, not a cold one
    web_max_inputs: int = Field(500, ge=1, le=1000)
    deadline_seconds: float = Field(DEFAULT_DEADLINE_SECONDS, gt=0, lt=150)
    proxy_auth: bool = False  # let Modal's proxy auth guard the endpoint instead of API keys

    @model_validator(mode="after")
    def _check(self) -> ModalDeployment:
        unknown = [name for name in self.models if name not in CATALOG]
        if unknown or not self.models:
            raise ValueError(f"IMAGEGEN_MODELS must name catalog models ({', '.join(CATALOG)}); "
                             f"got {','.join(self.models)!r}")
        for model_id, gpu in self.gpus.items():
            if model_id not in self.models:
                raise ValueError(f"IMAGEGEN_MODAL_GPUS names {model_id!r}, which is not served "
                                 f"({','.join(self.models)})")
            if gpu.split(":")[0].upper() not in GPU_TYPES:
                raise ValueError(f"IMAGEGEN_MODAL_GPUS: unknown GPU {gpu!r} for {model_id} "
                                 f"(known: {', '.join(GPU_TYPES)})")
        if self.min_containers > self.max_containers:
            raise ValueError(f"min_containers ({self.min_containers}) exceeds max_containers ({self.max_containers})")
        return self

    def gpu_for(self, model_id: str) -> str:
        return self.gpus.get(model_id) or CATALOG[model_id].gpu

    def dtype_for(self, model_id: str) -> str:
        """What the model loads in: float16 on a T4 (no fast bfloat16 there), bfloat16 elsewhere."""
        return "float16" if self.gpu_for(model_id).split(":")[0].upper() == "T4" else "bfloat16"

    def forwarded_env(self) -> dict[str, str]:
        """What the containers must see at run time: the served models and the service settings
        given at deploy time. API keys are not among them: they live in the Secret."""
        service = ("IMAGEGEN_MODEL_ALIASES", "IMAGEGEN_PUBLIC_URL", "IMAGEGEN_IMAGE_TTL_SECONDS",
                   "IMAGEGEN_MAX_PROMPT_CHARS")
        env = {name: os.environ[name] for name in service if name in os.environ}
        env.update({name: value for name, value in os.environ.items() if name.startswith("IMAGEGEN_MODAL_")})
        env["IMAGEGEN_MODELS"] = ",".join(self.models)
        return env
