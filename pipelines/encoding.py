"""The Worker's output encoding: what a caller waits for after the last denoising step.

An 8-bit RGB or RGBA PNG is written here: each row through PNG's Up filter (the row above
subtracted, one numpy subtraction for the whole picture), then deflated by ISA-L (Intel's igzip,
through the `isal` package) at its level 1. On a photo-like 1024x1024 picture that takes
0.11-0.16x the time of Pillow's fastest level for 0.93-1.02x its bytes (RGB, RGBA; a smooth
gradient 0.08x, 0.99x: scripts/bench_encode.py); fpng, the encoder before this one, was as fast
for 1.3-1.9x the bytes. Of the filters, Sub made 1.2-1.4x Up's bytes, and Paeth, as small as Up,
took 4-11x longer in numpy. The file is a standard PNG (IHDR, the `parameters` iTXt chunk, one
IDAT holding one zlib stream, IEND: the PNG spec, 5 and 11) that Pillow and Chromium decode to the
same pixels (tests/test_encoding.py). numpy and ISA-L both let go of the GIL, so a batch's images
encode on several cores. Other modes (greyscale, 16-bit edits) and JPEG/WebP keep Pillow's fast
settings (`pictures.encode`).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from PIL import Image

from pipelines.contract import pictures

if TYPE_CHECKING:
    import numpy as np

# PNG's colour type for each mode written here (the PNG spec, 11.2.2), 8 bits a sample.
FAST_PNG_MODES = {"RGB": 2, "RGBA": 6}
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # the filter type byte that starts each row (the PNG spec, 9.2); the first row has none (0)
# ISA-L's levels run 0-3; at 1 it deflated the pictures above smaller than Pillow's level 1, and
# 2 and 3 took longer for 0-3% fewer bytes.
_LEVEL = 1
# The images of a batch are encoded side by side, in threads of their own, so a model thread that
# hands its pictures over starts its next batch at once.
_ENCODERS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="imagegen-encode")
Work = tuple[Image.Image, str, "int | None", "str | None"]  # image, format, compression, parameters


def encode(image: Image.Image, format: str, compression: int | None = None, parameters: str | None = None) -> bytes:
    """`image` as png, jpeg or webp bytes, as `pictures.encode` words it, PNGs the fast way."""
    if format != "png" or image.mode not in FAST_PNG_MODES:
        return pictures.encode(image, format, compression, parameters)
    from isal import isal_zlib  # here, with numpy below: a tenth of a second of `imagegen serve`'s start

    width, height = image.size
    header = struct.pack(">IIBBBBB", width, height, 8, FAST_PNG_MODES[image.mode], 0, 0, 0)
    text = [] if parameters is None else [_itxt("parameters", parameters)]
    chunks = [_chunk(b"IHDR", header), *text, _chunk(b"IDAT", isal_zlib.compress(_up_filtered(image), _LEVEL))]
    return b"".join([_SIGNATURE, *chunks, _chunk(b"IEND", b"")])


def _up_filtered(image: Image.Image) -> np.ndarray:
    """The scanlines PNG deflates: each row its filter byte, then its bytes less the row above's."""
    import numpy as np

    rows = np.asarray(image).reshape(image.height, -1)
    filtered = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 0] = 0
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: wraps modulo 256, as PNG's filters do
    return filtered


def _chunk(kind: bytes, data: bytes) -> bytes:
    """A chunk is its length, type, data, and the CRC-32 of type and data (the PNG spec, 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _itxt(keyword: str, text: str) -> bytes:
    """An iTXt chunk (UTF-8, uncompressed, no language: the PNG spec, 11.3.4.5), where Pillow's
    `PngInfo.add_itxt` would put it, right after the header."""
    return _chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def encode_all(work: list[Work]) -> list[bytes]:
    """Each (image, format, compression, parameters) encoded, in order, side by side."""
    if len(work) == 1:
        return [encode(*work[0])]
    return list(_ENCODERS.map(lambda item: encode(*item), work))
