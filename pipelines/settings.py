"""The model side's settings: which models, on which device, cached where, queued how. `IMAGEGEN_*`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.contract.catalog import DEFAULT_MODELS
from pipelines.contract.config import ENV_PREFIX, comma_list, user_cache_dir
from pipelines.contract.matting import DEFAULT_MATTING, MATTING_MODELS


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Comma-separated catalog ids or local diffusers folders; the first is the default model.
    models: Annotated[list[str], NoDecode, BeforeValidator(comma_list)] = list(DEFAULT_MODELS)
    cache_dir: Path = Field(default_factory=user_cache_dir)
    device: str = Field("auto", pattern="^(auto|cpu|cuda|mps)(:[0-9]+)?$")
    preload: bool = False
    # torch's CPU threads for model work; unset: the cores this process may use, less one
    # (pipelines/threads.py has the measurements).
    threads: int | None = Field(None, ge=1)
    # Images carry how they were made (prompt, model, seed, steps, size), as A1111's do: a PNG in a
    # `parameters` text chunk, a JPEG or WebP in its EXIF UserComment; false: nothing but pixels.
    png_parameters: bool = True
    # What cuts the subject out for `background: "transparent"` (pipelines/contract/matting.py).
    matting_model: str = Field(DEFAULT_MATTING, pattern="^(" + "|".join(MATTING_MODELS) + ")$")
    max_loaded_models: int = Field(3, ge=1)
    # Load: requests waiting per model before new ones get 429 at once; how long one may wait
    # for its turn before a 503.
    max_queue: int = Field(32, ge=1)
    queue_timeout_seconds: float = Field(120.0, gt=0)
    # Batching: compatible requests that waited while the model was busy share its next
    # pipeline call, up to this many images and this many rendered pixels in all (images x
    # width x height). A request that finds the model idle runs at once, unless it is told to
    # wait this long for company.
    max_batch_images: int = Field(8, ge=1)
    max_batch_pixels: int | None = Field(None, ge=1)  # None: what pays on the device (batching.py)
    batch_wait_ms: float = Field(0.0, ge=0)
    # GPU speed (pipelines/optimize.py). Unset: on where safe and paying, which is CUDA; off on a CPU.
    fuse_qkv: bool | None = None
    channels_last: bool | None = None
    attention_backend: str = "auto"  # or a diffusers backend: "_native_cudnn", "_native_flash", "flash", ...
    torch_compile: bool | None = None  # regional compilation of the repeated blocks, warmed up at load
    compile_mode: str = Field("default", pattern="^(default|reduce-overhead|max-autotune|max-autotune-no-cudagraphs)$")
    compile_cache_dir: str | None = None  # TORCHINDUCTOR_CACHE_DIR; on Modal a Volume path keeps it warm
    prompt_cache_size: int | None = Field(None, ge=0)  # prompts whose embeddings are kept, per model; 0: off
    vae_tile_above: int | None = Field(None, ge=0)  # decode in tiles above this side (px); 0: never
    # Off unless asked: they change the pixels (scripts/bench_gpu.py reports by how much).
    quantize: str = Field("none", pattern="^(none|fp8)$")
    step_cache: str = Field("none", pattern="^(none|fbc|taylorseer)$")
    step_cache_threshold: float = Field(0.05, gt=0)
