"""Z-Image-Turbo: a single-stream transformer with Qwen3 prompts, 8 steps, no guidance (a
negative prompt would need guidance above 0, which the turbo model is distilled out of)."""

from __future__ import annotations

from pipelines.families.base import Family

# Unpacked 16-channel latents with FLUX.1's VAE scale and shift: the base preview fits as it is.
ZIMAGE = Family({}, takes_negative_prompt=False, call_options={})
