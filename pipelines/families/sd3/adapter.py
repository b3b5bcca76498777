"""Stable Diffusion 3.5: an MMDiT with two CLIP prompts and T5, classic guidance (Large Turbo
runs at 0, where negative prompts have no effect).

Facts the host needs (read from diffusers 0.42.1's `pipeline_stable_diffusion_3.py`):
- `pipe.vae_scale_factor` is 8; height and width must be multiples of 16
  (`vae_scale_factor * pipe.patch_size`), otherwise the pipeline raises.
- Step-callback `latents` are plain VAE latents, shape (B, 16, H/8, W/8); the pipeline decodes
  `latents / scaling_factor + shift_factor` (the family's preview in pipelines/families does the same).
- Classic CFG: `guidance_scale` (default 7.0, CFG when > 1) with `negative_prompt` (and
  `negative_prompt_2`/`_3`); SD3.5 Large Turbo would be run with `guidance_scale=0.0`."""

from __future__ import annotations

from pipelines.families.base import Family

# Unpacked 16-channel latents with SD3's VAE scale and shift: the base preview fits as it is.
SD3 = Family("sd3", {}, takes_negative_prompt=True, call_options={})
