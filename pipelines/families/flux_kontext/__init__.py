"""FLUX.1 Kontext: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.flux_kontext.adapter import FLUX_KONTEXT as ADAPTER
from pipelines.families.flux_kontext.tiny import build_tiny
from pipelines.families.full_size import Architecture

ARCHITECTURES: tuple[Architecture, ...] = ()  # none measured yet

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
