"""Edit uploads: check them, and turn OpenAI's mask convention into the Worker's.

OpenAI: pixels with alpha = 0 in the mask mark the area to edit; with no mask, the image's own
fully transparent pixels do; with neither, the whole image is edited under the prompt.
The Worker gets diffusers' convention: a greyscale PNG, white = repaint, black = keep.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from handlers.errors import invalid

_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True)
class EditInput:
    image: bytes
    size: tuple[int, int]
    mask: bytes | None  # diffusers convention; None: edit the whole image


def _open(data: bytes, param: str) -> Image.Image:
    if not data:
        raise invalid(param, f"The '{param}' file is empty.", code="invalid_image")
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in _FORMATS:
            raise invalid(param, f"The '{param}' file is {image.format}; use PNG, JPEG or WEBP.",
                          code="invalid_image_format")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise invalid(param, f"The '{param}' file is not a readable PNG, JPEG or WEBP image.",
                      code="invalid_image") from exc
    return image


def _alpha(image: Image.Image) -> Image.Image | None:
    """The image's alpha channel, or None when it has none."""
    if image.mode in ("RGBA", "LA", "PA"):
        return image.getchannel("A")
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").getchannel("A")
    return None


def _edit_area(alpha: Image.Image) -> Image.Image:
    """White where alpha is exactly 0 (the area to edit), black elsewhere."""
    return alpha.point(lambda a: 255 if a == 0 else 0, mode="L")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def read_edit_input(image_data: bytes, mask_data: bytes | None) -> EditInput:
    image = _open(image_data, "image")
    mask_area: Image.Image | None = None
    if mask_data is not None:
        mask = _open(mask_data, "mask")
        if mask.size != image.size:
            raise invalid(
                "mask",
                f"The mask is {mask.width}x{mask.height} but the image is {image.width}x{image.height}; "
                "they must be the same size.",
                code="mask_size_mismatch",
            )
        alpha = _alpha(mask)
        if alpha is None:
            raise invalid(
                "mask",
                "The mask has no alpha channel: use a PNG whose fully transparent pixels (alpha = 0) mark the area to edit.",
                code="invalid_mask",
            )
        mask_area = _edit_area(alpha)
    else:
        alpha = _alpha(image)
        if alpha is not None and alpha.getextrema()[0] == 0:
            mask_area = _edit_area(alpha)
    return EditInput(image=image_data, size=image.size, mask=None if mask_area is None else _png(mask_area))
