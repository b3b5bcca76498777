"""Speed on a GPU: the optimisations the fastest hosts use, as settings, applied once after a load.

`apply(pipe, optimizations, device, warm_up)` is the one call the model cache makes. Each option is
a setting (`IMAGEGEN_*`, see EngineSettings); `None` means "where it is safe and pays", which is
CUDA: there bf16 (the cache's dtype already), fused QKV projections, channels_last, regional
`torch.compile` with a warm-up, the prompt-embedding cache and VAE tiling above 2048 px are on.
Elsewhere (CPU, MPS) all stay off unless set. fp8 quantisation and step caches change the
pixels, so they are off unless asked for; scripts/bench_gpu.py reports their drift (PSNR
against the plain bf16 image of the same seed).

Calling `apply` again (a Modal container loads on the CPU for its snapshot, then moves to the
GPU) applies what the new device turns on and was not applied yet; nothing is applied twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from pipelines.optimizations import (
    COMPILE_MODES,
    QUANTIZATIONS,
    STEP_CACHES,
    Optimizations,
    OptimizationUnavailable,
)
from pipelines.prompt_cache import add_prompt_cache

__all__ = ["COMPILE_MODES", "QUANTIZATIONS", "STEP_CACHES", "OptimizationUnavailable", "Optimizations", "apply"]

log = logging.getLogger("imagegen")


def denoiser(pipe: Any) -> Any:
    """The pipeline's denoising network: its transformer, else its UNet."""
    return getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)


def apply(
    pipe: Any, optimizations: Optimizations | None, device: str, warm_up: Callable[[], Any] | None = None
) -> list[str]:
    """Apply what `optimizations` turn on for `device` and `pipe` has not had yet; the names applied.

    `warm_up` runs one generation after compiling (so the first request does not pay for it); if
    compiling fails there, the blocks go back to eager and the model still serves.
    """
    chosen = (optimizations or Optimizations()).for_device(device)
    done: set[str] = pipe.__dict__.setdefault("_imagegen_optimizations", set())
    steps: list[tuple[str, bool, Callable[[Any, Optimizations], None]]] = [
        ("fuse_qkv", bool(chosen.fuse_qkv), _fuse_qkv),
        ("channels_last", bool(chosen.channels_last), _channels_last),
        ("attention_backend", chosen.attention_backend != "auto", _attention_backend),
        ("quantize", chosen.quantize != "none", quantize),
        ("step_cache", chosen.step_cache != "none", add_step_cache),
        ("torch_compile", bool(chosen.torch_compile), compile_repeated_blocks),
        ("prompt_cache", bool(chosen.prompt_cache_size), _prompt_cache),
        ("vae_tiling", bool(chosen.vae_tile_above), _vae_tiling),
    ]
    applied = []
    for name, wanted, step in steps:
        if wanted and name not in done:
            step(pipe, chosen)
            done.add(name)
            applied.append(name)
    if applied:
        log.info("optimisations on %s: %s", device, ", ".join(applied))
    if "torch_compile" in applied and chosen.warm_up and warm_up is not None:
        _warm_up(pipe, warm_up)
    return applied


def _fuse_qkv(pipe: Any, chosen: Optimizations) -> None:
    """One matmul for q, k and v instead of three, where diffusers' attention reads fused weights:
    the UNets, FLUX.1's and FLUX.2's transformers, and the KL VAEs' mid-block attention. Z-Image's and Qwen-Image's
    attention has no fused path in diffusers 0.42, so it is left alone there."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLFlux2,
        Flux2Transformer2DModel,
        FluxTransformer2DModel,
        UNet2DConditionModel,
    )

    fusable = (UNet2DConditionModel, FluxTransformer2DModel, Flux2Transformer2DModel, AutoencoderKL, AutoencoderKLFlux2)
    for module in (denoiser(pipe), getattr(pipe, "vae", None)):
        if isinstance(module, fusable):
            module.fuse_qkv_projections()


def unfuse_for_adapters(pipe: Any) -> None:
    """Split the denoiser's fused q/k/v again: a LoRA's layers wrap to_q, to_k and to_v, which the
    fused attention no longer calls (a no-op where nothing was fused)."""
    module = denoiser(pipe)
    if module is None or not hasattr(module, "unfuse_qkv_projections"):
        return
    # The UNets keep their unfused processors aside once fused (and lack the attribute before).
    fused = getattr(module, "original_attn_processors", None) is not None or any(
        getattr(each, "fused_projections", False) for each in module.modules()
    )
    if fused:
        module.unfuse_qkv_projections()


def _channels_last(pipe: Any, chosen: Optimizations) -> None:
    """Convolutions in NHWC, which cuDNN's fastest kernels want: the UNet and the VAE."""
    import torch

    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if module is not None and any(isinstance(each, torch.nn.Conv2d) for each in module.modules()):
            module.to(memory_format=torch.channels_last)


def _attention_backend(pipe: Any, chosen: Optimizations) -> None:
    from diffusers.models.attention_dispatch import AttentionBackendName

    name = chosen.attention_backend.lower()
    known = sorted(each.value for each in AttentionBackendName)
    if name not in known:
        raise OptimizationUnavailable(f"unknown attention backend {name!r}; use auto or one of {', '.join(known)}")
    if name.endswith("_hub"):
        raise OptimizationUnavailable(
            f"attention backend {name!r} downloads its kernel at load; install the "
            "kernel's package and name the local backend instead"
        )
    model = denoiser(pipe)
    if model is None or type(model).__name__ == "UNet2DConditionModel":
        log.warning(
            "attention backend %s ignored for %s: its attention does not use diffusers' dispatcher",
            name,
            type(pipe).__name__,
        )
        return
    model.set_attention_backend(name)


def quantize(pipe: Any, chosen: Optimizations) -> None:
    """fp8 weights and activations (dynamic, per row) in the denoiser's linear layers, through
    torchao: half the memory traffic of bf16 and the fp8 tensor cores of an H100/L40S/4090."""
    if chosen.quantize != "fp8":
        raise OptimizationUnavailable(f"unknown quantisation {chosen.quantize!r}; use one of {QUANTIZATIONS}")
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError:
        raise OptimizationUnavailable(
            "IMAGEGEN_QUANTIZE=fp8 needs torchao (pip install torchao) and a GPU with "
            "fp8 support (compute capability 8.9+: L4, L40S, H100, H200)"
        ) from None
    quantize_(denoiser(pipe), Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))


def add_step_cache(pipe: Any, chosen: Optimizations) -> None:
    """Skip most of the transformer on steps whose first block changed little (First Block Cache),
    or predict whole steps from a Taylor expansion of earlier ones (TaylorSeer)."""
    from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

    model = denoiser(pipe)
    if not hasattr(model, "enable_cache"):
        log.warning(
            "step cache %s ignored for %s: diffusers has no step cache for its %s",
            chosen.step_cache,
            type(pipe).__name__,
            type(model).__name__,
        )
        return
    if chosen.step_cache == "fbc":
        model.enable_cache(FirstBlockCacheConfig(threshold=chosen.step_cache_threshold))
    elif chosen.step_cache == "taylorseer":
        model.enable_cache(TaylorSeerCacheConfig())
    else:
        raise OptimizationUnavailable(f"unknown step cache {chosen.step_cache!r}; use one of {STEP_CACHES}")


def compile_repeated_blocks(pipe: Any, chosen: Optimizations) -> None:
    """Regional compilation: each repeated block (FLUX's 57, SDXL's 70 transformer blocks...) is
    compiled once and reused, so compiling takes seconds instead of the whole model's minutes."""
    if chosen.compile_mode not in COMPILE_MODES:
        raise OptimizationUnavailable(f"unknown compile mode {chosen.compile_mode!r}; use one of {COMPILE_MODES}")
    if chosen.compile_cache_dir:
        # Inductor reads these when it first writes: the compiled kernels survive the process
        # (and, on a Volume, the container), so the next start's warm-up is a cache hit.
        os.makedirs(chosen.compile_cache_dir, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = chosen.compile_cache_dir
        os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(chosen.compile_cache_dir, "triton"))
    model = denoiser(pipe)
    if not getattr(model, "_repeated_blocks", None):
        log.warning(
            "torch.compile skipped for %s: %s names no repeated blocks", type(pipe).__name__, type(model).__name__
        )
        return
    # A step cache's hook breaks the block's graph on purpose (its skip decision runs eagerly).
    options: dict[str, Any] = {"fullgraph": chosen.step_cache == "none", "backend": chosen.compile_backend}
    if chosen.compile_backend == "inductor":
        options["mode"] = chosen.compile_mode
    model.compile_repeated_blocks(**options)


def compiled_blocks(pipe: Any) -> list[Any]:
    """The denoiser's blocks that are compiled (torch's `Module.compile` marks them)."""
    model = denoiser(pipe)
    return [each for each in model.modules() if getattr(each, "_compiled_call_impl", None) is not None] if model else []


def uncompile(pipe: Any) -> None:
    """The denoiser's blocks back to their eager forward (what `Module.compile` set, unset)."""
    for block in compiled_blocks(pipe):
        block._compiled_call_impl = None
    pipe.__dict__.get("_imagegen_optimizations", set()).discard("torch_compile")


def _warm_up(pipe: Any, warm_up: Callable[[], Any]) -> None:
    import time

    began = time.monotonic()
    try:
        warm_up()
    except Exception:
        log.warning("compiling %s failed; it serves uncompiled", type(pipe).__name__, exc_info=True)
        uncompile(pipe)
        warm_up()  # a fault that is not the compiler's surfaces here, as a failed load
        return
    log.info("compiled and warmed %s in %.1f s", type(pipe).__name__, time.monotonic() - began)


def _prompt_cache(pipe: Any, chosen: Optimizations) -> None:
    add_prompt_cache(pipe, int(chosen.prompt_cache_size or 0))


def _vae_tiling(pipe: Any, chosen: Optimizations) -> None:
    """Decode in tiles of `vae_tile_above` px, which diffusers does only for a larger image: below
    the threshold the decode is untouched (tiling costs time and leaves faint seams)."""
    vae = getattr(pipe, "vae", None)
    side = int(chosen.vae_tile_above or 0)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return
    vae.enable_tiling()
    if hasattr(vae, "tile_sample_min_size"):  # AutoencoderKL, FLUX.2's
        vae.tile_sample_min_size = side
        vae.tile_latent_min_size = side // 2 ** (len(vae.config.block_out_channels) - 1)
    elif hasattr(vae, "tile_sample_min_height"):  # Qwen-Image's
        vae.enable_tiling(
            tile_sample_min_height=side,
            tile_sample_min_width=side,
            tile_sample_stride_height=side * 3 // 4,
            tile_sample_stride_width=side * 3 // 4,
        )
