"""A tiny random-weight FLUX.1 Kontext [dev] pipeline (`FluxKontextPipeline`), built offline.

Kontext has FLUX.1-dev's components exactly (same transformer layout with guidance embedding,
CLIP + T5, 16-channel VAE with shift + scale, dynamic-shift scheduler), so this reuses
the FLUX family's tiny builder and only changes the pipeline class.
"""

from __future__ import annotations

from typing import Any

from pipelines.families.flux.tiny import build_tiny as build_flux


def build_tiny() -> Any:
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**build_flux().components)
