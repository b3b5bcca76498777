"""FLUX.2 [klein]: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.flux2.adapter import FLUX2 as ADAPTER
from pipelines.families.flux2.architecture import ARCHITECTURES
from pipelines.families.flux2.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
