"""Dynamic batching: which waiting jobs may share one pipeline call, and how they are gathered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any, Protocol, TypeVar

from pipelines.contract.job import Job


def batch_key(job: Job) -> tuple[Any, ...] | None:
    """Jobs with equal keys can share one pipeline call; None: this job runs alone."""
    if job.task != "generate" or job.partial_images:
        return None
    return (job.model, job.width, job.height, job.steps, job.guidance, job.loras)


class Waiting(Protocol):
    """A queued job, and whether its caller has gone."""

    job: Job
    stop: threading.Event


W = TypeVar("W", bound=Waiting)


# Pixels one pipeline call may render in all, by device. On a CPU, with torch on the cores less
# one (pipelines/threads.py), `scripts/bench_batching.py --sizes 512 --rounds 2
# --max-batch-pixels 2097152` measured 8 x 512x512 sharing a call paying 1.22x the images/s with
# 8 concurrent requests (a lone request 1.01x: the same path), and `--sizes 256 --rounds 2`
# with this default 1.73x (8 x 256x256 in a call). (With torch on every core, earlier runs found 2 x 512x512 0.95x and
# 8 x 512x512 0.64x: the threads fought over the cores.) On a GPU a batch amortises the weights'
# memory traffic over its images; not measured here (no GPU was lent), so the usual figure: 8
# images at 1024x1024.
BATCH_PIXELS = {"cpu": 8 * 512 * 512}
GPU_BATCH_PIXELS = 8 * 1024 * 1024


def batch_pixels(device: str) -> int:
    return BATCH_PIXELS.get(device.split(":")[0], GPU_BATCH_PIXELS)


def pixels(job: Job) -> int:
    """What a job costs a batch: its images times their rendered pixels."""
    return job.n * job.width * job.height


async def next_batch(
    waiting: deque[W], arrived: asyncio.Event, *, max_images: int, max_pixels: int, wait_seconds: float = 0.0
) -> list[W]:
    """The first live job of `waiting`, plus compatible ones up to `max_images` images and
    `max_pixels` pixels in all, waiting up to `wait_seconds` for more to arrive (`arrived` is
    set on each arrival). The first job runs whatever its size.

    Those taken leave `waiting`; the rest keep their order. Jobs whose callers have gone are
    skipped at the head and never joined to a batch.
    """
    while waiting and waiting[0].stop.is_set():
        waiting.popleft()
    if not waiting:
        return []
    batch = [waiting.popleft()]
    key = batch_key(batch[0].job)
    if key is None:
        return batch
    deadline = time.monotonic() + wait_seconds
    while (room := max_images - sum(each.job.n for each in batch)) > 0:
        budget = max_pixels - sum(pixels(each.job) for each in batch)
        fits = next(
            (
                each
                for each in waiting
                if not each.stop.is_set()
                and batch_key(each.job) == key
                and each.job.n <= room
                and pixels(each.job) <= budget
            ),
            None,
        )
        if fits is not None:
            waiting.remove(fits)
            batch.append(fits)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), remaining)
        except TimeoutError:
            break
    return batch
