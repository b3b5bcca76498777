"""Stable Diffusion 2.x (sd-turbo): its adapter (the quirks), its tiny random-weight model, its full-size
architectures."""

from __future__ import annotations

from pipelines.families.sd.adapter import SD as ADAPTER
from pipelines.families.sd.architecture import ARCHITECTURES
from pipelines.families.sd.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
