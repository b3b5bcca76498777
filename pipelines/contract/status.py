"""What an engine can say about itself and about one job: for readiness, metrics and the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

# not_loaded: never asked for (or evicted); remote: served by a pool elsewhere (Modal), whose
# containers start on demand.
ModelState = Literal["not_loaded", "loading", "ready", "failed", "remote"]


@dataclass(frozen=True)
class ModelStatus:
    state: ModelState
    reason: str | None = None  # why it failed
    load_seconds: float | None = None  # the last load's duration
    waiting: int = 0  # jobs queued for it here
    running: int = 0  # jobs it is running (or, remote, in flight)
    batches: dict[int, int] = field(default_factory=dict)  # pipeline calls so far, by images per call


@dataclass
class JobTrace:
    """What the engine measured of the job the current request runs: filled in by the engine,
    read by the web side for the request's log line and metrics."""

    queue_seconds: float | None = None
    run_seconds: float | None = None
    batch_images: int | None = None  # images in the pipeline call this job shared
    # Denoising steps done so far, counted as they happen (an async job's progress reads it).
    steps_done: int = 0
    # When the request arrived (Unix time): where a deadline is counted from, so the time spent
    # receiving an upload (and waiting for a cold container) counts against it.
    received_at: float = field(default_factory=time.time)
    # Set by the web side to watch the run: called from the model's thread after each denoising
    # step with (steps done, steps in all). Engines that cannot see steps (remote) never call it.
    on_step: Callable[[int, int], None] | None = None
    # Set by whoever reads the steps as they happen (an async job's runner, an MCP client asking
    # for progress): a remote engine fetches them from where the job runs only then.
    watched: bool = False


# Set by the web side around a request; engines fill it in when it is there.
current_trace: ContextVar[JobTrace | None] = ContextVar("imagegen_job_trace", default=None)
