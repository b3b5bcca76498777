"""Z-Image-Turbo: a single-stream transformer with Qwen3 prompts, 8 steps, no guidance (a
negative prompt would need guidance above 0, which the turbo model is distilled out of).

Facts the host needs (read from diffusers 0.42.1's `pipeline_z_image.py`):
- `pipe.vae_scale_factor` is 8; height and width must be multiples of 16 (`vae_scale_factor * 2`),
  otherwise the pipeline raises.
- Step-callback `latents` are plain (unpacked) VAE latents, shape (B, 16, H/8, W/8); the pipeline
  decodes `latents / scaling_factor + shift_factor` (the family's preview in pipelines/families does the same).
- Guidance is `guidance_scale`; Turbo is run with `guidance_scale=0.0` (anything > 0 runs CFG with
  `negative_prompt`, which is otherwise ignored).
"""

from __future__ import annotations

from pipelines.families.base import Family

# Unpacked 16-channel latents with FLUX.1's VAE scale and shift: the base preview fits as it is.
ZIMAGE = Family("zimage", {}, takes_negative_prompt=False, call_options={})
