"""What a job must keep to run again after a restart: the resolved Job and how to answer it."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from handlers.images.schemas import ImageRequestBase
from pipelines.contract.job import Job


@dataclass(frozen=True)
class Work:
    """The Job as the synchronous path resolved it (seeds drawn, defaults applied), the request it
    came from (its response_format, quality, background shape the body) and the URL base its
    image links use (the caller's, taken when it was submitted)."""

    job: Job
    request: ImageRequestBase
    base_url: str

    def dump(self) -> bytes:
        # Pickle, as the same Job crosses the Modal boundary; it is read back only from our own
        # job store, never from a caller.
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(payload: bytes | None) -> Work:
        """The work back; ValueError saying why when it cannot be (a payload from another version)."""
        if payload is None:
            raise ValueError("its request was not kept")
        try:
            work = pickle.loads(payload)
        except Exception as exc:
            raise ValueError(f"its stored request could not be read ({type(exc).__name__})") from None
        if not isinstance(work, Work):
            raise ValueError("its stored request is not a job's")
        return work
