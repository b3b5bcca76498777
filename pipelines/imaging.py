"""Pixels on the model side: resizing, and keeping what an edit must keep."""

from __future__ import annotations

from PIL import Image


def resized(image: Image.Image, size: tuple[int, int], *, exact: bool = False) -> Image.Image:
    """`image` at `size`; masks (exact=True) stay strictly black and white."""
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.NEAREST if exact else Image.Resampling.LANCZOS)


def keep_outside(original: Image.Image, generated: Image.Image, area: Image.Image) -> Image.Image:
    """The generated pixels inside `area` (white), the original's outside it, byte for byte.

    The pipeline's VAE round trip changes every pixel; pasting the original back is what keeps
    unedited pixels identical. An original with transparency keeps its alpha outside the area
    and becomes opaque inside it.
    """
    generated = resized(generated, original.size).convert(original.mode)
    return Image.composite(generated, original, resized(area, original.size, exact=True))
