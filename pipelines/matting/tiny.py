"""The built-in tiny matte, built and saved as a folder that loads like BiRefNet's (its code beside it)."""

from __future__ import annotations

from pathlib import Path


def build_tiny_matte(dest: Path) -> None:
    """A seeded TinyMatte saved at `dest`, its source file and `auto_map` with it."""
    import torch
    from transformers.utils import logging as transformers_logging

    from pipelines.matting.tiny_matte import TinyMatte, TinyMatteConfig

    TinyMatteConfig.register_for_auto_class()
    TinyMatte.register_for_auto_class("AutoModelForImageSegmentation")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TinyMatte(TinyMatteConfig())
    transformers_logging.disable_progress_bar()  # a server log, not a notebook
    model.save_pretrained(dest, safe_serialization=True)
