"""SDXL (sdxl-turbo, the SDXL inpainting model): a UNet with two CLIP prompts."""

from __future__ import annotations

from pipelines.families.base import Family

SDXL = Family("sdxl", {}, takes_negative_prompt=True, call_options={})
