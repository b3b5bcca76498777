"""A tiny random-weight FLUX.1 Kontext [dev] pipeline (`FluxKontextPipeline`), built offline.

Kontext has FLUX.1-dev's components exactly (same transformer layout with guidance embedding,
CLIP + T5, 16-channel VAE with shift + scale, dynamic-shift scheduler), so this reuses
`pipelines/tiny.py`'s FLUX builder and only changes the pipeline class.

Facts the host needs (read from diffusers 0.42.1's `pipeline_flux_kontext.py`):
- `pipe.vae_scale_factor` is 8; latents are packed 2x2, so sizes are multiples of 16.
- The pipeline does NOT honour height/width as given: it keeps their aspect ratio but rescales
  them to `max_area` (default 1024**2) and floors to 16. Pass `max_area=height * width` to get
  the asked size (it still floors to 16).
- The input image is resized to the nearest of Kontext's preferred ~1MP resolutions unless
  `_auto_resize=False` (then it is only floored to multiples of 16); either way it is VAE-encoded
  at that size, so an edit of a large image is costlier than a generation.
- Guidance: `guidance_scale` (default 3.5) is the distilled guidance fed to the transformer;
  real CFG is `true_cfg_scale` (default 1.0, off) together with `negative_prompt`.
- Step-callback `latents` are packed, shape (B, (H/16)*(W/16), 64); the family's preview unpacks them
  and decodes `latents / scaling_factor + shift_factor`, exactly as the pipeline's final decode.
  Height and width there are the adjusted ones (the output image's size).
"""

from __future__ import annotations

from typing import Any


def build_kontext() -> Any:
    from diffusers import FluxKontextPipeline

    from pipelines.tiny import _build_flux

    return FluxKontextPipeline(**_build_flux().components)
