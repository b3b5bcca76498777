"""VolumeImageStore: temp images on a Modal Volume, shared by every container of the web front.

A container sees a Volume as it was when the container started, plus its own writes. So:
- `put` writes to the mount and commits before returning, so the URL works from any container;
- `get` reads the mount, and on a miss (another container wrote it) reads the committed file
  through the Volume API. Never `reload()` here: it fails while files are open and shows an
  empty Volume while it runs, and this front serves many requests at once.
- Expiry is enforced on every read. The creation time travels in the id itself, so a file read
  through the API (which gives no mtime) is checked the same way as one on the mount.

The Volume API is a small injected boundary (`VolumeFiles`): `ModalVolumeFiles` in production,
a temp directory and a stand-in in tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from handlers.stores.core import ImageFolder, stamped_time
from pipelines.contract.errors import storage_unavailable

log = logging.getLogger("imagegen")


class VolumeFiles(Protocol):
    """What only a round trip to Modal can do; the mount does everything else."""

    def commit(self) -> None:
        """Persist this container's writes and deletions, for every other container to read."""
        ...

    def read(self, path: str) -> bytes | None:
        """The committed file at `path` (relative to the Volume's root), or None if there is none."""
        ...


class ModalVolumeFiles:
    """`VolumeFiles` over a `modal.Volume` mounted in this container."""

    def __init__(self, volume: Any) -> None:
        self.volume = volume

    def commit(self) -> None:
        self.volume.commit()

    def read(self, path: str) -> bytes | None:
        try:
            return b"".join(self.volume.read_file(path))
        except FileNotFoundError:
            return None


class VolumeImageStore(ImageFolder):
    """An ImageStore whose files live at the root of a Volume mounted at `root`."""

    def __init__(
        self,
        root: Path,
        ttl_seconds: int,
        volume: VolumeFiles,
        *,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(root, ttl_seconds, max_bytes=max_bytes, clock=clock)
        self.volume = volume
        # Group commit: one commit covers every write finished before it started, so a burst of
        # n images (or of requests) costs a few commits, not n, and each put still returns only
        # once its own file is committed.
        self._written = 0
        self._committed = 0
        self._counter = threading.Lock()
        self._committing = threading.Lock()

    def put(self, data: bytes, format: str) -> str:
        image_id = self.write(data, format)
        with self._counter:
            self._written += 1
            mine = self._written
        self._commit_through(mine)
        return image_id

    def get(self, image_id: str) -> bytes | None:
        if not self.live(image_id):
            return None
        try:
            return (self.root / image_id).read_bytes()
        except FileNotFoundError:
            pass
        try:
            return self.volume.read(image_id)
        except Exception:
            log.exception("reading temp image %s through the Volume API failed", image_id)
            raise storage_unavailable("the Volume is unreachable", reading=True) from None

    def created(self, image_id: str) -> float | None:
        """Only the id's stamp: a file read through the Volume API has no mtime to fall back on."""
        return stamped_time(image_id)

    def sweep(self) -> int:
        """Delete the expired images this container can see, and commit the deletions."""
        removed = super().sweep()
        if removed:
            self.volume.commit()
        return removed

    def _commit_through(self, write: int) -> None:
        with self._committing:
            if self._committed >= write:
                return  # a commit that started after this write has covered it
            with self._counter:
                covered = self._written
            try:
                self.volume.commit()
            except Exception:
                log.exception("committing temp images to the Volume failed")
                raise storage_unavailable("the Volume is unreachable") from None
            self._committed = covered
