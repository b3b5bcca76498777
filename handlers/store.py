"""ImageStore: temp images behind capability URLs, expiring after a TTL."""

from __future__ import annotations

import logging
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Protocol

from handlers.errors import APIError

log = logging.getLogger("imagegen")

# An image id is a random token (128 bits, URL-safe) plus the format's extension. Only ids that
# match reach the file system, so no path a client sends can name a file outside the store.
# \Z, not $: `$` also matches before a trailing newline.
IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}\.(png|jpeg|webp)\Z")
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


def storage_unavailable(reason: str, *, reading: bool = False) -> APIError:
    """The store cannot be used now: a 503 worth retrying (b64_json needs no storage at all)."""
    if reading:
        message = f"The server could not read the image ({reason}). Try again later."
    else:
        message = (f"The server could not store the image ({reason}). Try again later, or ask for "
                   "response_format=b64_json to get the image without a URL.")
    return APIError(503, message, code="storage_unavailable", retryable=True, headers={"retry-after": "2"})


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
        """The new id; a 503 (never a URL that 404s) when the folder cannot take the file."""
        image_id = new_image_id(format)
        try:
            self._write(self.root / image_id, data)
        except OSError as exc:
            log.error("storing a temp image in %s failed: %s", self.root, exc)
            raise storage_unavailable(exc.strerror or type(exc).__name__) from None
        return image_id

    def _write(self, path: Path, data: bytes) -> None:
        # Write then rename, so a reader never sees half an image.
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        except FileNotFoundError:  # the folder was removed under us (a tmp cleaner): make it again
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, image_id: str) -> bytes | None:
        if not IMAGE_ID.match(image_id):
            return None
        path = self.root / image_id
        try:
            if self._expired(path.stat().st_mtime):
                path.unlink(missing_ok=True)
                return None
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            log.error("reading temp image %s failed: %s", image_id, exc)
            raise storage_unavailable(exc.strerror or type(exc).__name__, reading=True) from None

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
