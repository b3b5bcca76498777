"""VolumeImageStore: temp images on a Modal Volume, shared by every container of the web front.

A container sees a Volume as it was when the container started, plus its own writes. So:
- `put` writes to the mount; `publish` (awaited before a response names the URL) returns once a
  commit that started after those writes has finished, so the URL works from any container.
  One background committer does the commits, one at a time, each covering every write made
  before it began: a burst of responses shares a few commits, and waiting for one holds no
  thread (the commit runs in one thread of its own, not in the request thread pool);
- `get` reads the mount, and on a miss (another container wrote it) reads the committed file
  through the Volume API. Never `reload()` here: it fails while files are open and shows an
  empty Volume while it runs, and this front serves many requests at once.
- Expiry is enforced on every read. The creation time travels in the id itself, so a file read
  through the API (which gives no mtime) is checked the same way as one on the mount.

The Volume API is a small injected boundary (`VolumeFiles`): `ModalVolumeFiles` in production,
a temp directory and a stand-in in tests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
        # Writes are numbered; a commit covers every write numbered before it began.
        self._written = 0
        self._counter = threading.Lock()
        self._committer = Committer(self._commit_now)

    def put(self, data: bytes, format: str) -> str:
        """The new image's id, written to this container's mount (`publish` makes it shared)."""
        image_id = self.write(data, format)
        with self._counter:
            self._written += 1
        return image_id

    async def publish(self) -> None:
        with self._counter:
            mine = self._written
        await self._committer.cover(mine)

    def publish_blocking(self) -> None:
        """A commit covering every write so far, from a plain thread (one at a time, as all are)."""
        self._committer.commit_blocking()

    def _commit_now(self) -> int:
        """Commit (in the committer's thread); the last write the commit covers."""
        with self._counter:
            covered = self._written
        try:
            self.volume.commit()
        except Exception:
            log.exception("committing temp images to the Volume failed")
            raise storage_unavailable("the Volume is unreachable") from None
        return covered

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
            self._committer.commit_blocking()
        return removed


class Committer:
    """Runs `commit()` (which returns the last write it covered) at most once at a time, in a
    thread of its own, for callers that await `cover(n)`: each is released by the first commit
    that began after its write `n`, and a burst of callers shares one commit."""

    def __init__(self, commit: Callable[[], int]) -> None:
        self._commit = commit
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imagegen-volume-commit")
        self._covered = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._running: asyncio.Task[None] | None = None

    async def cover(self, write: int) -> None:
        if write <= self._covered:
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((write, done))
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._commit_while_waited_for())
        await done

    async def _commit_while_waited_for(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            try:
                covered = await loop.run_in_executor(self._thread, self._commit)
            except Exception as exc:  # every caller this commit would have released hears of it
                waiting, self._waiting = self._waiting, []
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self._covered = max(self._covered, covered)
            released = [(write, done) for write, done in self._waiting if write <= covered]
            self._waiting = [each for each in self._waiting if each[0] > covered]
            for _, done in released:
                if not done.done():
                    done.set_result(None)

    def commit_blocking(self) -> None:
        """A commit from a plain thread (the sweep), in the committer's thread, so that no two
        commits of this container ever overlap."""
        self._thread.submit(self._commit).result()
