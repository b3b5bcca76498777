"""The Engine: where a Job turns into encoded images. Routes never reach past it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from pipelines.contract.job import ImageEvent, Job, Rendered
from pipelines.contract.status import ModelStatus


class Engine(Protocol):
    """Runs Jobs. LocalEngine runs them in this process; ModalEngine on a GPU pool.

    Failures are raised as `pipelines.contract.errors.APIError`, so the routes never translate them.
    """

    async def start(self) -> None:
        """Begin serving (e.g. preload models in the background); must return quickly."""

    async def run(self, job: Job) -> Rendered:
        """The job's images, encoded in `job.output_format`, in seed order, and its usage."""
        ...

    def stream(self, job: Job) -> AsyncIterator[ImageEvent]:
        """The job's partial previews (`job.partial_images` per image) and each completed image
        (each completed event carries the whole job's usage).

        Closing the iterator early (the client went away) stops the remaining steps.
        """
        ...

    def status(self) -> dict[str, ModelStatus]:
        """Each served model's state and load, by id; cheap, for /health/ready and /metrics."""
        ...

    def drain(self, seconds: float) -> None:
        """The process stops within `seconds`: take no new jobs, let the running ones finish, and
        answer at once (a retryable 503) every waiting job that could not finish in time."""

    async def close(self) -> None:
        """Finish or cancel work and free resources."""
