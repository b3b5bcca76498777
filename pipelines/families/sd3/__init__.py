"""Stable Diffusion 3.5: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.full_size import Architecture
from pipelines.families.sd3.adapter import SD3 as ADAPTER
from pipelines.families.sd3.tiny import build_tiny

ARCHITECTURES: tuple[Architecture, ...] = ()  # none measured yet

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
