"""The temp-image store's core: ids, expiry, atomic writes and the sweep, over one folder.

An id is `<creation second, 9 hex digits><128 random bits, URL-safe>.<format>`. The creation
time travels in the id, so expiry is the same rule wherever the bytes are read from (a local
file, or a Volume's API, which gives no mtime), and a forged stamp in the future is refused.
Only ids that match the pattern reach the file system, so no path a client sends can name a
file outside the store.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# Any id this server ever handed out (older, unstamped ones included). \Z, not $: `$` also
# matches before a trailing newline.
IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}\.(png|jpeg|webp)\Z")
_STAMPED_ID = re.compile(r"^(?P<created>[0-9a-f]{9})[A-Za-z0-9_-]{22}\.(png|jpeg|webp)\Z")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
INCOMING = ".incoming-"  # a write in progress; renamed into place when complete
_CLOCK_SKEW_SECONDS = 60


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


def stamped_id(format: str, created: float) -> str:
    if format not in CONTENT_TYPES:
        raise ValueError(f"unknown image format {format!r}")
    return f"{int(created):09x}{secrets.token_urlsafe(16)}.{format}"


def stamped_time(image_id: str) -> int | None:
    """The creation second an id carries, or None for an id without a stamp."""
    match = _STAMPED_ID.match(image_id)
    return None if match is None else int(match["created"], 16)


class ImageFolder:
    """Images as files in one folder, each written atomically and live for `ttl_seconds`."""

    def __init__(self, root: Path, ttl_seconds: int, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes, format: str) -> str:
        """The new image's id, once its file is complete (readers never see half an image)."""
        image_id = stamped_id(format, self.clock())
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=INCOMING)
        except FileNotFoundError:  # the folder was removed under us (a tmp cleaner): make it again
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=INCOMING)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, self.root / image_id)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return image_id

    def live(self, image_id: str) -> bool:
        """A well-formed id, created within the TTL (and not in the future: a forged stamp)."""
        created = self.created(image_id)
        return created is not None and self._fresh(created)

    def created(self, image_id: str) -> float | None:
        """When the image was made: its id's stamp; for an unstamped id (written by an older
        version), its file's mtime; None if it has neither."""
        if not IMAGE_ID.match(image_id):
            return None
        stamp = stamped_time(image_id)
        if stamp is not None:
            return stamp
        try:
            return (self.root / image_id).stat().st_mtime
        except OSError:
            return None

    def _fresh(self, created: float) -> bool:
        return -_CLOCK_SKEW_SECONDS <= self.clock() - created <= self.ttl_seconds

    def sweep(self) -> int:
        """Delete expired images and abandoned partial writes; return how many."""
        removed = 0
        for path in self.root.iterdir():
            try:
                if path.name.startswith(INCOMING):
                    expired = not self._fresh(path.stat().st_mtime)
                else:
                    expired = IMAGE_ID.match(path.name) is not None and not self.live(path.name)
                if expired:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
