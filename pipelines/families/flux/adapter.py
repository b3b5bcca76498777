"""FLUX.1 [schnell] and [dev]: a transformer over 2x2-packed latents, T5 and CLIP prompts,
guidance distilled into a model input (no negative prompt)."""

from __future__ import annotations

from pipelines.families.base import Family

# schnell's T5 context is 256 tokens (dev takes 512; 256 serves both).
FLUX = Family("flux", {}, takes_negative_prompt=False, call_options={"max_sequence_length": 256}, packed_latents=True)
