"""The GPU optimisations as settings: what to apply, each decided per device where not set
(pipelines/optimize.py applies them)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
STEP_CACHES = ("none", "fbc", "taylorseer")
QUANTIZATIONS = ("none", "fp8")
# Above this side (px) the VAE decodes in tiles on CUDA unless set: no catalog size reaches it
# today, and tiling costs time and leaves seams, so it is only for memory.
DEFAULT_VAE_TILE_ABOVE = 2048
# The prompt-embedding cache is on for every device. On the CPU (scripts/bench_prompt_cache.py,
# the tiny families at 256x256, 2 steps, median of 10 interleaved rounds, 2 cores at load 3.3): a
# repeated prompt took 0.41x (tiny-flux2) to 0.94x (tiny-sd) the time with it as without; a new
# prompt 0.63-1.39x, the machine's noise around 1 (a miss adds only a dict entry). A real text
# encoder is a larger share of a CPU request than a tiny one. What it holds: 2-112 KiB a prompt for
# the tiny families; for full-size ones about 0.3 MB (SD's CLIP, float32) to ~16 MB (FLUX.2
# [klein]'s 512 tokens x 7680, float32), so 64 prompts stay within a few percent of the weights'
# own memory.
DEFAULT_PROMPT_CACHE_SIZE = 64


class OptimizationUnavailable(RuntimeError):
    """An optimisation was asked for and this machine or model cannot do it (torchao missing, say)."""


@dataclass(frozen=True)
class Optimizations:
    """What to apply; `None` fields follow the device (on for CUDA, off elsewhere; the prompt cache
    on everywhere)."""

    fuse_qkv: bool | None = None
    channels_last: bool | None = None
    # "auto": torch's SDPA picks flash / cuDNN / memory-efficient per call. Or one of diffusers'
    # attention backends ("_native_cudnn", "_native_flash", "flash", "sage", ...): transformer
    # families only (the UNets' attention does not go through diffusers' dispatcher).
    attention_backend: str = "auto"
    torch_compile: bool | None = None
    compile_mode: str = "default"
    compile_backend: str = "inductor"  # "aot_eager" checks the graphs without code generation (tests)
    compile_cache_dir: str | None = None  # TORCHINDUCTOR_CACHE_DIR: a Modal Volume keeps it across containers
    warm_up: bool = True
    prompt_cache_size: int | None = None  # 0: off
    vae_tile_above: int | None = None  # 0: never tile
    quantize: str = "none"
    step_cache: str = "none"
    step_cache_threshold: float = 0.05

    @classmethod
    def from_settings(cls, settings: Any) -> Optimizations:
        """The options an EngineSettings (or anything with the same field names) carries."""
        names = {each.name for each in fields(cls)}
        return cls(**{name: getattr(settings, name) for name in names if getattr(settings, name, None) is not None})

    @classmethod
    def eager(cls) -> Optimizations:
        """Plain diffusers: nothing applied (the benchmark's baseline)."""
        return cls(fuse_qkv=False, channels_last=False, torch_compile=False, prompt_cache_size=0, vae_tile_above=0)

    def for_device(self, device: str) -> Optimizations:
        """Every `None` decided for `device`."""
        cuda = device.startswith("cuda")
        return replace(
            self,
            fuse_qkv=cuda if self.fuse_qkv is None else self.fuse_qkv,
            channels_last=cuda if self.channels_last is None else self.channels_last,
            torch_compile=cuda if self.torch_compile is None else self.torch_compile,
            prompt_cache_size=DEFAULT_PROMPT_CACHE_SIZE if self.prompt_cache_size is None else self.prompt_cache_size,
            vae_tile_above=(DEFAULT_VAE_TILE_ABOVE if cuda else 0)
            if self.vae_tile_above is None
            else self.vae_tile_above,
        )
