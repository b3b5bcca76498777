"""The images a Job carries: how they are read, what counts as transparent, how they are written.

One module for both sides, so the web side's checks and the Worker's pixels never disagree
about an image (whether it has alpha, what mode it is in, how it is encoded).
"""

from __future__ import annotations

import io

from PIL import ExifTags, Image
from PIL.PngImagePlugin import PngInfo

# Pillow's default PNG level is slow; level 1 is several times faster for ~25% more bytes.
# WEBP's method=0 is its fast setting, and quality 100 means lossless, so edits keep their
# pixels exactly there too.
_SAVE_OPTIONS = {
    "png": lambda quality: {"format": "PNG", "compress_level": 1},
    "jpeg": lambda quality: {"format": "JPEG", "quality": 90 if quality is None else quality},
    "webp": lambda quality: {
        "format": "WEBP",
        "quality": 90 if quality is None else quality,
        "method": 0,
        "lossless": quality == 100,
    },
}
ALPHA_MODES = ("RGBA", "LA", "PA")
# A JPEG's or WebP's `parameters` go in its EXIF UserComment, as A1111 writes them (piexif's
# `UserComment.dump(text, encoding="unicode")`: this prefix, then UTF-16, big-endian).
_UNICODE_COMMENT = b"UNICODE\0"
_JPEG_COMMENT_ROOM = 65_000  # bytes: 65,533 in a marker segment, less the EXIF's own structure


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def has_transparency(image: Image.Image) -> bool:
    """An alpha channel, a palette with transparent entries, or a transparent colour key (PNG tRNS)."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def eight_bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits (Pillow's own conversion clips at 255 instead)."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        return image.point(lambda value: value / 256).convert("L")
    return image


def alpha_channel(image: Image.Image) -> Image.Image | None:
    """The image's alpha (palette and colour-key transparency included), or None if it has none."""
    if not has_transparency(image):
        return None
    if image.mode not in ALPHA_MODES:
        image = eight_bit(image).convert("RGBA")
    return image.getchannel("A")


def encode(image: Image.Image, format: str, compression: int | None = None, parameters: str | None = None) -> bytes:
    """`image` as png, jpeg or webp bytes (`compression`: quality 0-100, lossy formats only).
    `parameters`: how it was made, kept where A1111 and the tools that read its files look for it:
    a PNG's `parameters` text chunk, a JPEG's or WebP's EXIF UserComment."""
    if format == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    options = _SAVE_OPTIONS[format](compression)
    if parameters is not None and format == "png":
        info = PngInfo()
        info.add_itxt("parameters", parameters)
        options["pnginfo"] = info
    elif parameters is not None:
        comment = _UNICODE_COMMENT + parameters.encode("utf-16-be")
        # A JPEG's EXIF is one marker segment, under 64 KiB: a prompt of ~30,000 characters (the
        # operator's limit raised near its ceiling) goes without, rather than failing the request.
        if format != "jpeg" or len(comment) <= _JPEG_COMMENT_ROOM:
            exif = Image.Exif()
            exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = comment
            options["exif"] = exif
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    return encode(image, "png")
