"""Qwen-Image: its adapter (the quirks), its tiny random-weight model, its full-size architectures."""

from __future__ import annotations

from pipelines.families.qwen_image.adapter import QWEN_IMAGE as ADAPTER
from pipelines.families.qwen_image.architecture import ARCHITECTURES
from pipelines.families.qwen_image.tiny import build_tiny

__all__ = ["ADAPTER", "ARCHITECTURES", "build_tiny"]
