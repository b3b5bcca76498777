"""Z-Image-Turbo: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.zimage.adapter import ZIMAGE as ADAPTER
from pipelines.families.zimage.architecture import ARCHITECTURES
from pipelines.families.zimage.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
