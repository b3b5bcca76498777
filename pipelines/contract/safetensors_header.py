"""A .safetensors file's header: its tensor names, shapes and metadata, read without its data
(8 bytes of length, then JSON) and without torch, so the web side can tell what a file is."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_MAX_HEADER = 100 * 1024 * 1024  # the format's own bound; past it the file is not safetensors


class NotSafetensors(ValueError):
    """The file cannot be read as .safetensors."""


def read_header(path: Path) -> dict[str, Any]:
    """The header as a dict: tensor name -> {dtype, shape, offsets}, plus `__metadata__`."""
    try:
        with Path(path).open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > _MAX_HEADER:
                raise NotSafetensors(f"{path}: header too large")
            header = json.loads(file.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise NotSafetensors(f"{path} is not a readable .safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise NotSafetensors(f"{path} is not a readable .safetensors file (its header is not an object)")
    return header
