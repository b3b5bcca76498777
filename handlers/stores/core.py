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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pipelines.contract.errors import storage_full

# Any id this server ever handed out (older, unstamped ones included). \Z, not $: `$` also
# matches before a trailing newline.
IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}\.(png|jpeg|webp)\Z")
# What the store keeps: the images, and job results kept apart from their records (`.json`
# blobs, handlers/jobs/results.py), which live, count and expire as images do but are never
# served by URL (the routes match IMAGE_ID).
STORED_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}\.(png|jpeg|webp|json)\Z")
_STAMPED_ID = re.compile(r"^(?P<created>[0-9a-f]{9})[A-Za-z0-9_-]{22}\.(png|jpeg|webp|json)\Z")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
BLOB_FORMAT = "json"
INCOMING = ".incoming-"  # a write in progress; renamed into place when complete
_CLOCK_SKEW_SECONDS = 60
# Past this share of the quota, expired images are deleted before a write, not at the next sweep.
_NEAR_QUOTA = 0.9


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

    def usage(self) -> tuple[int, int]:
        """(bytes, files) of the images held now."""
        ...

    async def publish(self) -> None:
        """Return once every image put so far can be read by its URL from any server (a shared
        store commits; a local folder already can). Awaited before a response names a URL."""
        ...

    def publish_blocking(self) -> None:
        """`publish`, from a plain thread (the job store's writer), blocking until it is done."""
        ...

    def hold(self, size: int) -> None:
        """Count `size` bytes of the quota in for images not made yet (a 503 when they do not fit)."""
        ...

    def release(self, size: int) -> None:
        """Give back bytes held with `hold`."""
        ...

    def discard(self, image_id: str) -> None:
        """Delete an image that was stored but never handed out."""
        ...


def stamped_id(format: str, created: float) -> str:
    if format not in CONTENT_TYPES and format != BLOB_FORMAT:
        raise ValueError(f"unknown image format {format!r}")
    return f"{int(created):09x}{secrets.token_urlsafe(16)}.{format}"


def stamped_time(image_id: str) -> int | None:
    """The creation second an id carries, or None for an id without a stamp."""
    match = _STAMPED_ID.match(image_id)
    return None if match is None else int(match["created"], 16)


class ImageFolder:
    """Images as files in one folder, each written atomically and live for `ttl_seconds`, at most
    `max_bytes` of them at once: a URL once returned works until its TTL, so when a new image
    does not fit even after the expired ones are gone, it is the new image that is refused."""

    def __init__(
        self, root: Path, ttl_seconds: int, *, max_bytes: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = Path(root)
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)
        self._counting = threading.Lock()
        self._bytes = self._files = 0
        for path in self.root.iterdir():
            if STORED_ID.match(path.name):
                self._count(path.stat().st_size, 1)

    def usage(self) -> tuple[int, int]:
        with self._counting:
            return self._bytes, self._files

    async def publish(self) -> None:
        """A folder's files are readable once written: nothing to wait for."""

    def publish_blocking(self) -> None:
        """Nothing to wait for either."""

    def _count(self, size: int, files: int) -> None:
        with self._counting:
            self._bytes += size
            self._files += files

    def write(self, data: bytes, format: str) -> str:
        """The new image's id, once its file is complete (readers never see half an image)."""
        self._reserve(len(data))
        image_id = stamped_id(format, self.clock())
        try:
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
        except BaseException:
            self._count(-len(data), 0)
            raise
        self._count(0, 1)
        return image_id

    def hold(self, size: int) -> None:
        self._reserve(size)

    def release(self, size: int) -> None:
        self._count(-size, 0)

    def discard(self, image_id: str) -> None:
        if STORED_ID.match(image_id):
            self.delete(self.root / image_id)

    def _reserve(self, size: int) -> None:
        """Count `size` bytes in before writing them; near the quota, delete the expired images
        first; past it, refuse (a 503 saying when the oldest image will have expired)."""
        if self.max_bytes is None:
            self._count(size, 0)
            return
        with self._counting:
            if self._bytes + size <= self.max_bytes * _NEAR_QUOTA:
                self._bytes += size
                return
        self.sweep()
        with self._counting:
            if self._bytes + size <= self.max_bytes:
                self._bytes += size
                return
        raise storage_full(self.max_bytes, self._until_room())

    def _until_room(self) -> float:
        """Seconds until the oldest image expires, which is when room comes back."""
        created = [self.created(path.name) for path in self.root.iterdir() if STORED_ID.match(path.name)]
        oldest = min((moment for moment in created if moment is not None), default=self.clock())
        return min(60.0, max(1.0, oldest + self.ttl_seconds - self.clock()))

    def delete(self, path: Path) -> bool:
        """Delete one stored file, keeping the count; False if it was already gone."""
        try:
            size = path.stat().st_size
            os.unlink(path)
        except FileNotFoundError:
            return False
        if STORED_ID.match(path.name):
            self._count(-size, -1)
        return True

    def live(self, image_id: str) -> bool:
        """A well-formed id, created within the TTL (and not in the future: a forged stamp)."""
        created = self.created(image_id)
        return created is not None and self._fresh(created)

    def created(self, image_id: str) -> float | None:
        """When the image was made: its id's stamp; for an unstamped id (written by an older
        version), its file's mtime; None if it has neither."""
        if not STORED_ID.match(image_id):
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
                    expired = STORED_ID.match(path.name) is not None and not self.live(path.name)
                if expired and self.delete(path):
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
