"""ImageStore: temp images behind capability URLs, expiring after a TTL."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Protocol

# An image id is a random token (128 bits, URL-safe) plus the format's extension. Only ids that
# match reach the file system, so no path a client sends can name a file outside the store.
IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}\.(png|jpeg|webp)$")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImageStore(Protocol):
    def put(self, data: bytes, format: str) -> str:
        """Store encoded image bytes; return the new image id (`<token>.<ext>`)."""
        ...

    def get(self, image_id: str) -> bytes | None:
        """The bytes, or None when the id is malformed, unknown or expired."""
        ...

    def sweep(self) -> int:
        """Delete expired images; return how many."""
        ...


def new_image_id(format: str) -> str:
    if format not in CONTENT_TYPES:
        raise ValueError(f"unknown image format {format!r}")
    return f"{secrets.token_urlsafe(16)}.{format}"


class LocalImageStore:
    """Images as files in one folder; a file's mtime is its creation time."""

    def __init__(self, root: Path, ttl_seconds: int) -> None:
        self.root = Path(root)
        self.ttl_seconds = ttl_seconds
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, format: str) -> str:
        image_id = new_image_id(format)
        # Write then rename, so a reader never sees half an image.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, self.root / image_id)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return image_id

    def get(self, image_id: str) -> bytes | None:
        if not IMAGE_ID.match(image_id):
            return None
        path = self.root / image_id
        try:
            if self._expired(path.stat().st_mtime):
                path.unlink(missing_ok=True)
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def sweep(self) -> int:
        removed = 0
        for path in self.root.iterdir():
            try:
                if self._expired(path.stat().st_mtime) and (IMAGE_ID.match(path.name) or path.name.startswith(".incoming-")):
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _expired(self, created: float) -> bool:
        return time.time() - created > self.ttl_seconds
