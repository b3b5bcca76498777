"""Run a resolved Job and answer it, the one way every image route does: streamed as server-sent
events (in the shape the OpenAI SDKs parse), or the images inline (`b64_json`) or as URLs."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from handlers.deps import Services
from handlers.disconnect import unless_disconnected
from handlers.http_errors import error_body
from handlers.images.resolve import response_format
from handlers.images.schemas import (
    Image,
    ImageRequestBase,
    ImagesResponse,
    PromptedRequest,
    StreamEvent,
)
from handlers.jobs.accept import accept_job, wants_job
from handlers.request_log import note_job
from handlers.urls import public_base_url, temp_image_url
from pipelines.contract import errors
from pipelines.contract.engine import Engine
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job

log = logging.getLogger("imagegen")


async def run_and_respond(
    job: Job, request: ImageRequestBase, http: Request, services: Services
) -> ImagesResponse | StreamingResponse | JSONResponse:
    """`job` run on the engine, answered as `request` asked: a stream when it streams, else the
    images, inline or as URLs; with `Prefer: respond-async`, a 202 and a job. A client that hangs
    up before the images are made cancels the job."""
    note_job(job)
    if wants_job(http, request):
        return await accept_job(job, request, http, services)
    if isinstance(request, PromptedRequest) and request.stream:
        return await _stream(services.engine, job, request)
    images = await unless_disconnected(http, services.engine.run(job))
    return await images_response(images, job, request, public_base_url(http, services.settings.public_url), services)


async def _url(image: bytes, job: Job, base_url: str, services: Services) -> str | None:
    """The stored image's URL; None when the store is full and the server would rather answer inline."""
    try:
        image_id = await run_in_threadpool(services.store.put, image, job.output_format)
    except APIError as error:
        if error.code == "storage_full" and services.settings.storage_full == "b64":
            return None
        raise
    return temp_image_url(base_url, image_id)


async def images_response(
    encoded: list[bytes], job: Job, request: ImageRequestBase, base_url: str, services: Services
) -> ImagesResponse:
    """The synchronous body for `encoded`: inline or behind URLs under `base_url`. An async job's
    result is built here too, so it is the very body the synchronous call would have answered."""
    revised_prompt = job.prompt or None  # variations have no prompt
    inline = response_format(request, services.settings.response_format) == "b64_json"
    data = []
    for image, seed in zip(encoded, job.seeds, strict=True):
        url = None if inline else await _url(image, job, base_url, services)
        if url is None:
            inline = True
            data.append(Image(b64_json=base64.b64encode(image).decode(), revised_prompt=revised_prompt, seed=seed))
        else:
            data.append(Image(url=url, revised_prompt=revised_prompt, seed=seed))
    if any(item.url for item in data):
        await services.store.publish()  # no URL is handed out before any server can serve it
    return ImagesResponse(
        created=int(time.time()),
        data=data,
        size=f"{job.output_width}x{job.output_height}",
        quality=request.quality or "auto",
        output_format=job.output_format,
        background="transparent" if request.background == "transparent" else "opaque",
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


async def _stream(engine: Engine, job: Job, request: PromptedRequest) -> StreamingResponse:
    """Start the stream once the first event exists, so a failure before any image (an unknown
    model, a failed load) is still a plain HTTP error; later failures become an `error` event,
    which the SDKs raise."""
    prefix = "image_generation" if job.task == "generate" else "image_edit"
    settings = {
        "size": f"{job.output_width}x{job.output_height}",
        "quality": request.quality or "auto",
        "output_format": job.output_format,
        "background": request.background or "auto",
    }

    def encode(event: ImageEvent) -> bytes:
        kind = "partial_image" if event.kind == "partial" else "completed"
        payload = StreamEvent(
            type=f"{prefix}.{kind}",  # type: ignore[arg-type]
            b64_json=base64.b64encode(event.data).decode(),
            created_at=int(time.time()),
            partial_image_index=event.partial_index,
            image_index=event.image_index,
            seed=job.seeds[event.image_index],
            **settings,
        )
        return _sse(payload.model_dump(exclude_none=True))

    events = aiter(engine.stream(job))
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield encode(first)
            async for event in events:
                yield encode(event)
        except APIError as exc:
            yield _sse({"type": "error", **error_body(exc)})
        except Exception:
            log.exception("stream of %s on %s failed", job.task, job.model)
            failed = errors.internal_error("The server had an error while making the image.")
            yield _sse({"type": "error", **error_body(failed)})
        finally:
            # Also when the client has gone: closing the engine's stream stops the remaining steps.
            await events.aclose()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"cache-control": "no-cache"})
