"""Stable Diffusion 3.5: an MMDiT with two CLIP prompts and T5, classic guidance (Large Turbo
runs at 0, where negative prompts have no effect)."""

from __future__ import annotations

from pipelines.families.base import Family

# Unpacked 16-channel latents with SD3's VAE scale and shift: the base preview fits as it is.
SD3 = Family({}, takes_negative_prompt=True, call_options={}, single_file_pipeline="StableDiffusion3Pipeline")
