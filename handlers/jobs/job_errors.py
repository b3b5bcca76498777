"""The errors only jobs raise, built once."""

from __future__ import annotations

from pipelines.contract.errors import APIError


def job_not_found(job_id: str) -> APIError:
    """An unknown id, an expired job and another key's job: the same answer, so none can be probed."""
    return APIError("not_found", f"No job with id '{job_id}'.", param="job_id", code="job_not_found")


def too_many_jobs(message: str, retry_after: float) -> APIError:
    return APIError(
        "rate_limited",
        f"{message} Retry when one has finished.",
        code="too_many_jobs",
        retryable=True,
        retry_after=retry_after,
    )


def job_lost(why: str) -> APIError:
    return APIError("internal", f"The server restarted and could not resume this job: {why}.", code="job_lost")
