"""GET /v1/images/jobs, GET and DELETE /v1/images/jobs/{id}: the caller's jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from handlers.deps import ServicesDep
from handlers.jobs.service import caller_key, cancel_job, get_job, list_jobs
from handlers.protocol import ErrorResponse

router = APIRouter(tags=["jobs"], responses={code: {"model": ErrorResponse} for code in (401, 404)})


@router.get("/images/jobs")
async def jobs(request: Request, services: ServicesDep, limit: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
    """The caller's recent jobs, newest first, without their results."""
    return {"object": "list", "data": await list_jobs(services, caller_key(request), limit)}


@router.get("/images/jobs/{job_id}")
async def job(job_id: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """One job: its status and progress; when completed, `result` is the synchronous call's body."""
    return await get_job(services, caller_key(request), job_id)


@router.delete("/images/jobs/{job_id}")
async def cancel(job_id: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops at its next step); answers the job."""
    return await cancel_job(services, caller_key(request), job_id)
