"""Pixels: decoding, resizing, keeping what an edit must keep, and encoding fast."""

from __future__ import annotations

import io

from PIL import Image

_SAVE_OPTIONS = {
    # Pillow's default PNG level is slow; level 1 is several times faster for ~25% more bytes.
    "png": lambda quality: {"format": "PNG", "compress_level": 1},
    "jpeg": lambda quality: {"format": "JPEG", "quality": 90 if quality is None else quality},
    # method=0 is WEBP's fast setting; 100 means lossless, so edits keep their pixels exactly.
    "webp": lambda quality: {"format": "WEBP", "quality": 90 if quality is None else quality, "method": 0,
                             "lossless": quality == 100},
}


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


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


def encode(image: Image.Image, format: str, compression: int | None = None) -> bytes:
    if format == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, **_SAVE_OPTIONS[format](compression))
    return out.getvalue()
