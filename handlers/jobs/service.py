"""Jobs as a service: what the HTTP routes (and any other front, such as MCP tools) call, each
with the caller's API key and a job id. Another key's job is the same 404 as an unknown one."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from starlette.requests import Request

from handlers.deps import Services
from handlers.jobs.job_errors import job_not_found
from handlers.jobs.records import JOB_ID_PREFIX, JobRecord, job_body, new_job_id
from handlers.jobs.work import Work
from pipelines.contract.job import Job, denoising_steps

_JOB_ID = re.compile(rf"^{JOB_ID_PREFIX}[A-Za-z0-9_-]{{22}}\Z")
ENDPOINTS = {"generate": "generations", "edit": "edits", "variation": "variations"}
OPEN = "open"  # the one owner when the server has no keys


def caller_key(http: Request) -> str | None:
    """The bearer key the request carried (the auth middleware has already checked it)."""
    scheme, _, token = http.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def owner_of(key: str | None, services: Services) -> str:
    """Whose jobs a key sees: a digest of it, so the store never holds a key."""
    if not services.settings.api_keys or key is None:
        return OPEN
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


async def submit_job(services: Services, key: str | None, job: Job, work: Work, webhook_url: str | None) -> JobRecord:
    record = JobRecord(
        id=new_job_id(),
        owner=owner_of(key, services),
        endpoint=ENDPOINTS[job.task],
        model=job.model,
        steps=denoising_steps(job.steps, job.strength),
        images=job.n,
        webhook_url=webhook_url,
    )
    return await services.jobs.submit(record, work)


async def _find(services: Services, key: str | None, job_id: str) -> JobRecord:
    record = await asyncio.to_thread(services.jobs.store.get, job_id) if _JOB_ID.match(job_id) else None
    if record is None or record.owner != owner_of(key, services) or record.expired():
        raise job_not_found(job_id)
    await services.jobs.take_up_if_lost(record)  # its front gone (jobs outlive it: leases.py)
    return services.jobs.live(record)


async def get_job(services: Services, key: str | None, job_id: str) -> dict[str, Any]:
    """The job as `GET /v1/images/jobs/{id}` shows it."""
    return job_body(await _find(services, key, job_id))


async def cancel_job(services: Services, key: str | None, job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job; a finished one is answered as it is."""
    return job_body(await services.jobs.cancel(await _find(services, key, job_id)))


async def list_jobs(services: Services, key: str | None, limit: int = 20) -> list[dict[str, Any]]:
    """The caller's recent jobs, newest first (results left out: fetch a job for its result)."""
    records = await asyncio.to_thread(services.jobs.store.recent, owner_of(key, services), limit)
    bodies = []
    for record in records:
        if not record.expired():
            body = job_body(services.jobs.live(record))
            body.pop("result", None)
            bodies.append(body)
    return bodies
