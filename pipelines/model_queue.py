"""What the LocalEngine queues: a Job's ticket (its caller's future, its stop flag, its trace)
and one model's queue of them (with the pace Retry-After and the drain are told from)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import JobTrace
from pipelines.pace import Pace, work


@dataclass(eq=False)
class Ticket:
    """A Job waiting for (or holding) its model: the caller awaits `future`."""

    job: Job
    future: asyncio.Future[Rendered]
    on_partial: Callable[[ImageEvent], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    # Filled in as it goes, for the request's log line and metrics.
    trace: JobTrace = field(default_factory=JobTrace)
    enqueued_at: float = field(default_factory=time.monotonic)
    # The caller's context (its request id, for one), so what the model's thread logs for it
    # says whose it is; a shared batch runs in its first job's.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class ModelQueue:
    """One model's waiting tickets and the task that feeds them, in batches, to its thread."""

    def __init__(self, model_id: str, prior_per_work: float | None = None) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imagegen-{model_id}")
        self.waiting: deque[Ticket] = deque()
        self.arrived = asyncio.Event()
        self.feeder: asyncio.Task[None] | None = None
        # For Retry-After and the drain: the recent batches' pace (a model's load is not counted),
        # and when the running batch started and how much work it holds.
        self.pace = Pace(prior_per_work)
        self.running_since: float | None = None
        self.running_work = 0.0
        self.running = 0  # jobs in the running batch

    def until_a_place_frees(self) -> float:
        """Seconds until the first waiting job leaves the queue: when the running batch ends."""
        if self.running_since is None:
            return self.pace.until_done(0.0, 0.0)
        return self.pace.until_done(self.running_work, time.monotonic() - self.running_since)

    def retry_after(self, batch_jobs: int) -> float:
        """What a client refused now is told: when a place frees, spread over the queue's run."""
        elapsed = 0.0 if self.running_since is None else time.monotonic() - self.running_since
        waiting = [job_work(ticket.job) for ticket in self.waiting]
        return self.pace.retry_after(self.running_work, elapsed, waiting, batch_jobs)


def job_work(job: Job) -> float:
    return work(job.n, job.width, job.height, job.steps)
