"""SDXL (sdxl-turbo, the SDXL inpainting model): its adapter (the quirks), its tiny random-weight model, its
full-size architectures."""

from __future__ import annotations

from pipelines.families.sdxl.adapter import SDXL as ADAPTER
from pipelines.families.sdxl.architecture import ARCHITECTURES
from pipelines.families.sdxl.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
