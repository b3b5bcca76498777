"""The batch window: which waiting jobs share a pipeline call, and how long the first waits for company."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

from pipelines.batching import batch_key, next_batch
from pipelines.contract.job import Job
from tests.jobs import small_job

GENERATE = small_job()


@dataclass(eq=False)
class Ticket:
    job: Job
    stop: threading.Event = field(default_factory=threading.Event)


def tickets(*jobs: Job) -> deque[Ticket]:
    return deque(Ticket(job) for job in jobs)


def gather(
    waiting: deque[Ticket], *, max_images: int = 8, max_pixels: int = 10**9, wait_seconds: float = 0.0
) -> list[Ticket]:
    return asyncio.run(
        next_batch(waiting, asyncio.Event(), max_images=max_images, max_pixels=max_pixels, wait_seconds=wait_seconds)
    )


def test_only_generations_of_the_same_shape_share_a_call() -> None:
    assert batch_key(GENERATE) == batch_key(replace(GENERATE, prompt="y", seeds=(9,), n=3))
    for other in (
        replace(GENERATE, width=128),
        replace(GENERATE, steps=4),
        replace(GENERATE, guidance=3.0),
        replace(GENERATE, model="tiny-sdxl"),
    ):
        assert batch_key(other) != batch_key(GENERATE)
    assert batch_key(replace(GENERATE, task="edit")) is None
    assert batch_key(replace(GENERATE, partial_images=2)) is None  # a stream's previews are its own


def test_compatible_waiting_jobs_join_up_to_the_image_limit_and_the_rest_keep_their_order() -> None:
    bigger = replace(GENERATE, width=128)
    waiting = tickets(
        replace(GENERATE, n=2), bigger, replace(GENERATE, n=4), replace(GENERATE, n=3), replace(GENERATE, n=2)
    )
    first, other, four, three, two = waiting
    batch = gather(waiting, max_images=8)
    assert batch == [first, four, two]  # 2 + 4 + 2 = 8; the 3 does not fit
    assert list(waiting) == [other, three]


def test_a_batch_renders_at_most_its_pixel_budget_but_the_first_job_always_runs() -> None:
    big = replace(GENERATE, width=512, height=512)
    waiting = tickets(replace(big, n=3), replace(big, n=2), replace(big, n=1), replace(big, n=1))
    first, two, one, another = waiting
    assert gather(waiting, max_pixels=4 * 512 * 512) == [first, one]  # 3 + 1 images fit; 2 more would not
    assert gather(waiting, max_pixels=512 * 512) == [two]  # over the budget on its own: still runs, alone
    assert list(waiting) == [another]


def test_an_edit_runs_alone_even_with_company_waiting() -> None:
    edit = Ticket(replace(GENERATE, task="edit"))
    waiting = deque([edit, Ticket(GENERATE), Ticket(GENERATE)])
    assert gather(waiting) == [edit]
    assert len(waiting) == 2


def test_jobs_whose_callers_left_are_skipped_and_never_joined() -> None:
    gone_first, live, gone_later, joins = tickets(GENERATE, GENERATE, GENERATE, GENERATE)
    gone_first.stop.set()
    gone_later.stop.set()
    waiting = deque([gone_first, live, gone_later, joins])
    assert gather(waiting) == [live, joins]
    assert list(waiting) == [gone_later]  # dropped by whoever owns it, not by the batch


def test_the_window_takes_what_arrives_within_it_and_no_later() -> None:
    async def scenario(wait_seconds: float, arrive_after: float) -> tuple[int, float]:
        waiting, arrived = tickets(GENERATE), asyncio.Event()

        async def arrive() -> None:
            await asyncio.sleep(arrive_after)
            waiting.append(Ticket(GENERATE))
            arrived.set()

        late = asyncio.create_task(arrive())
        began = time.monotonic()
        batch = await next_batch(waiting, arrived, max_images=2, max_pixels=10**9, wait_seconds=wait_seconds)
        took = time.monotonic() - began
        await late
        return len(batch), took

    joined, took = asyncio.run(scenario(wait_seconds=2.0, arrive_after=0.05))
    assert joined == 2 and took < 1.0  # full at once when the company arrives, not at the window's end
    alone, took = asyncio.run(scenario(wait_seconds=0.1, arrive_after=0.5))
    assert alone == 1 and 0.09 <= took < 0.45  # the window closed before the late one came


def test_nothing_live_waiting_is_an_empty_batch() -> None:
    (gone,) = waiting = tickets(GENERATE)
    gone.stop.set()
    assert gather(waiting) == [] and not waiting
