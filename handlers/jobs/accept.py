"""The one branch the image routes take for `Prefer: respond-async` (RFC 7240): a 202 and a job."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import Request

from handlers.deps import Services
from handlers.images.schemas import ImageRequestBase, PromptedRequest
from handlers.jobs.records import job_body
from handlers.jobs.service import caller_key, submit_job
from handlers.jobs.work import Work
from handlers.urls import public_base_url
from pipelines.contract.errors import invalid
from pipelines.contract.job import Job


def prefers_async(http: Request) -> bool:
    """Whether any `Prefer` header holds the `respond-async` preference."""
    for value in http.headers.getlist("prefer"):
        for preference in value.split(","):
            if preference.split(";")[0].split("=")[0].strip().lower() == "respond-async":
                return True
    return False


def wants_job(http: Request, request: ImageRequestBase) -> bool:
    """Whether to answer with a job; a 400 for what only a job can do, asked of a synchronous call."""
    if prefers_async(http):
        if isinstance(request, PromptedRequest) and request.stream:
            raise invalid("stream", "A job is not streamed: send either `stream: true` or `Prefer: respond-async`.")
        return True
    if request.webhook_url is not None:
        raise invalid(
            "webhook_url", "A webhook_url needs the header `Prefer: respond-async`: webhooks report a job's end."
        )
    return False


async def accept_job(job: Job, request: ImageRequestBase, http: Request, services: Services) -> JSONResponse:
    """Checked, written to the job store, then the 202 pointing at the job."""
    if request.webhook_url is not None:
        if services.webhooks is None:
            raise invalid(
                "webhook_url",
                "Webhooks are off on this server: the operator enables them by setting IMAGEGEN_WEBHOOK_SECRET "
                "to a `whsec_...` secret (receivers verify the signature with it).",
                code="webhooks_disabled",
            )
        await run_in_threadpool(services.webhooks.guard.check, request.webhook_url)
    base_url = public_base_url(http, services.settings.public_url)
    work = Work(job=job, request=request, base_url=base_url)
    record = await submit_job(services, caller_key(http), job, work, request.webhook_url)
    return JSONResponse(
        job_body(record),
        status_code=202,
        headers={"location": f"{base_url}/v1/images/jobs/{record.id}", "preference-applied": "respond-async"},
    )
