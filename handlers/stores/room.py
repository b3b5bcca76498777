"""Room in the temp-image store, held for a job's images before the job runs.

Without it, a full store is found out only once the images exist: the GPU work is done and
thrown away, and the retryable 503 makes the SDK redo it. So the room an answer by URL needs
is counted in before the job is queued (an encoded image is at most its raw RGBA bytes), each
image gives back its share as it is stored, and what is left, or an answer that failed half
way, gives back the rest: the images stored but never handed out are deleted.
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from handlers.stores.core import ImageStore
from pipelines.contract.job import Job

_HEADERS = 64 * 1024  # a file's headers and metadata (PNG text chunks, a C2PA manifest)


def most_bytes(job: Job) -> int:
    """The largest one of the job's encoded images can be."""
    return job.output_width * job.output_height * 4 + _HEADERS


class Room:
    def __init__(self, store: ImageStore, per_image: int, count: int) -> None:
        self.store = store
        self.per_image = per_image
        self.left = count
        self.stored: list[str] = []

    @classmethod
    async def hold(cls, store: ImageStore, job: Job) -> Room:
        """The room for all of `job`'s images, or the store's 503 (`storage_full`) now."""
        room = cls(store, most_bytes(job), job.n)
        await run_in_threadpool(store.hold, room.per_image * room.left)
        return room

    def put(self, data: bytes, format: str) -> str:
        """Store one image in the room held for it (its share goes back as the store counts it)."""
        if self.left:
            self.left -= 1
            self.store.release(self.per_image)
        image_id = self.store.put(data, format)
        self.stored.append(image_id)
        return image_id

    async def close(self, handed_out: bool) -> None:
        """Give back what was not used; unless the images were handed out, delete them."""
        if self.left:
            self.store.release(self.per_image * self.left)
            self.left = 0
        if not handed_out:
            for image_id in self.stored:
                await run_in_threadpool(self.store.discard, image_id)
            self.stored.clear()
