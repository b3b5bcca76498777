"""Sizes: what a caller may ask for, and what the model renders to give it."""

from __future__ import annotations

import re

from pipelines.contract.catalog import ModelSpec
from pipelines.contract.errors import invalid

# Every size OpenAI accepts is accepted, so unmodified clients work with any model: its named
# sizes, and any WxH on multiples of 16 with an aspect from 1:3 to 3:1, up to 3840x2160. When
# one is past a model's bounds the model renders the same shape within them and the result is
# resized to what was asked.
OPENAI_SIZES = frozenset({(256, 256), (512, 512), (1024, 1024), (1792, 1024), (1024, 1792), (1536, 1024), (1024, 1536)})
OPENAI_MULTIPLE = 16
OPENAI_MAX_EDGE = 3840
OPENAI_MAX_PIXELS = 3840 * 2160
# ASCII digits only: `\d` would take other scripts' digits too (Arabic-Indic "١٠٢٤").
_WXH = re.compile(r"^\s*([0-9]{1,5})\s*[xX×]\s*([0-9]{1,5})\s*$")

Size = tuple[int, int]


def format_size(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def valid_sizes_text(spec: ModelSpec) -> str:
    sizes = ", ".join(["auto", *(format_size(s) for s in spec.sizes)])
    return (
        f"one of {sizes}; WxH with each side from {spec.min_side} to {spec.max_side} and a multiple of "
        f"{spec.multiple}; or, as OpenAI takes them, WxH on multiples of {OPENAI_MULTIPLE} with an aspect from "
        f"1:3 to 3:1, up to {OPENAI_MAX_EDGE}x2160"
    )


def parse_size(text: str | None, spec: ModelSpec) -> Size | None:
    """The caller's size, validated for `spec`; None for "auto" or no size."""
    if text is None or text.strip().lower() == "auto":
        return None
    match = _WXH.match(text)
    if not match:
        raise invalid("size", f"Invalid size {text!r} for model {spec.id}: use {valid_sizes_text(spec)}.")
    size = (int(match[1]), int(match[2]))
    if size in OPENAI_SIZES or size in spec.sizes or _openai_accepts(size):
        return size
    if all(spec.min_side <= side <= spec.max_side and side % spec.multiple == 0 for side in size):
        return size
    raise invalid("size", f"Invalid size {text!r} for model {spec.id}: use {valid_sizes_text(spec)}.")


def _openai_accepts(size: Size) -> bool:
    width, height = size
    return (
        width % OPENAI_MULTIPLE == 0
        and height % OPENAI_MULTIPLE == 0
        and width > 0
        and height > 0
        and max(width, height) <= 3 * min(width, height)
        and max(width, height) <= OPENAI_MAX_EDGE
        and width * height <= OPENAI_MAX_PIXELS
    )


def render_size(output: Size, spec: ModelSpec) -> Size:
    """The size the model renders for `output`: same shape, within bounds, on the multiple."""
    width, height = output
    scale = min(1.0, spec.max_side / max(width, height))
    scale = max(scale, spec.min_side / min(width, height))

    def fit(side: int) -> int:
        side = round(side * scale / spec.multiple) * spec.multiple
        return min(max(side, spec.min_side), spec.max_side)

    return fit(width), fit(height)
