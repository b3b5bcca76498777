"""Stable Diffusion 2.x (sd-turbo): a UNet with CLIP prompts and classic guidance."""

from __future__ import annotations

from pipelines.families.base import Family

# Loaded without the safety checker: it needs separate weights from the hub, and the
# catalog's models do not ship it.
NO_SAFETY_CHECKER = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}

SD = Family("sd", NO_SAFETY_CHECKER, takes_negative_prompt=True, call_options={})
