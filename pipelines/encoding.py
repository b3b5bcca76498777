"""The Worker's output encoding: what a caller waits for after the last denoising step.

PNG goes through fpng, an SSE4.1 deflate made for images: 7-20x faster than Pillow's fastest
level on an 8-bit RGB or RGBA picture, for ~1.2-1.3x the bytes (scripts/bench_encode.py). Its
output is a standard PNG (one zlib stream, CRCs checked by every decoder), with pixels only: the
`parameters` text chunk is added here. Other modes (greyscale, 16-bit edits) and JPEG/WebP keep
Pillow's fast settings (`pictures.encode`).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from pipelines.contract import pictures

FAST_PNG_MODES = ("RGB", "RGBA")
# The images of a batch are encoded side by side, in threads of their own, so a model thread that
# hands its pictures over starts its next batch at once. Pillow's JPEG and WebP encoders release
# the GIL and use the cores; fpng holds it, but takes ~10 ms for a 1024x1024 PNG.
_ENCODERS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="imagegen-encode")
Work = tuple[Image.Image, str, "int | None", "str | None"]  # image, format, compression, parameters
_SIGNATURE_AND_HEADER = 8 + 4 + 4 + 13 + 4  # the signature, then IHDR: length, type, 13 bytes, CRC


def encode(image: Image.Image, format: str, compression: int | None = None, parameters: str | None = None) -> bytes:
    """`image` as png, jpeg or webp bytes, as `pictures.encode` words it, PNGs the fast way."""
    if format != "png" or image.mode not in FAST_PNG_MODES:
        return pictures.encode(image, format, compression, parameters)
    import fpng

    data = fpng.from_pil(image)
    return data if parameters is None else with_text(data, "parameters", parameters)


def with_text(png: bytes, keyword: str, text: str) -> bytes:
    """`png` with an iTXt chunk (UTF-8, uncompressed, no language) right after its header, where
    Pillow's `PngInfo.add_itxt` puts it: a chunk is its length, type, data, and the CRC-32 of
    type and data (the PNG spec, 5.3 and 11.3.4.5)."""
    body = keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return png[:_SIGNATURE_AND_HEADER] + chunk + png[_SIGNATURE_AND_HEADER:]


def encode_all(work: list[Work]) -> list[bytes]:
    """Each (image, format, compression, parameters) encoded, in order, side by side."""
    if len(work) == 1:
        return [encode(*work[0])]
    return list(_ENCODERS.map(lambda item: encode(*item), work))
