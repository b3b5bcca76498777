"""FLUX.1 [schnell] and [dev]: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.flux.adapter import FLUX as ADAPTER
from pipelines.families.flux.architecture import ARCHITECTURES
from pipelines.families.flux.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
