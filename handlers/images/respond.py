"""Run a resolved Job and answer it, the one way every image route does: streamed as server-sent
events (in the shape the OpenAI SDKs parse), or the images inline (`b64_json`) or as URLs."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

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
    Usage,
)
from handlers.jobs.accept import accept_job, wants_job
from handlers.provenance.credentials import ContentCredentials, with_credentials
from handlers.request_log import note_job
from handlers.stores.room import Room
from handlers.urls import public_base_url, temp_image_url
from pipelines.contract import errors
from pipelines.contract.engine import Engine
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job, Rendered

log = logging.getLogger("imagegen")
T = TypeVar("T")


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
        return await _stream(services.engine, job, request, http, services.credentials)
    base_url = public_base_url(http, services.settings.public_url)
    room = await _room_for(job, request, services)  # a full store is a 503 before the work, not after it

    async def answer() -> ImagesResponse:
        rendered = await unless_disconnected(http, services.engine.run(job))
        return await images_response(rendered, job, request, base_url, services, room)

    return await in_room(room, answer())


async def answer_job(
    rendered: Rendered, job: Job, request: ImageRequestBase, base_url: str, services: Services
) -> ImagesResponse:
    """An async job's result: the synchronous body, with its store room held now that the work is done
    (a job waits in a queue for as long as it must: room held from its 202 would sit idle)."""
    room = await _room_for(job, request, services)
    return await in_room(room, images_response(rendered, job, request, base_url, services, room))


async def in_room(room: Room | None, answer: Awaitable[T]) -> T:
    """`answer`, then `room` given back: what it stored is kept only once the answer is made."""
    try:
        made = await answer
    except BaseException:
        if room is not None:
            await room.close(handed_out=False)
        raise
    if room is not None:
        await room.close(handed_out=True)
    return made


async def _room_for(job: Job, request: ImageRequestBase, services: Services) -> Room | None:
    """The store room an answer by URL needs; None for one inline."""
    if response_format(request, services.settings.response_format) == "b64_json":
        return None
    return await hold_room(job, services)


async def hold_room(job: Job, services: Services) -> Room | None:
    """Room held for the job's images; None when the store is full and the server would rather answer inline."""
    try:
        return await Room.hold(services.store, job)
    except APIError as error:
        if error.code == "storage_full" and services.settings.storage_full == "b64":
            return None
        raise


async def store_url(image: bytes, job: Job, base_url: str, services: Services, room: Room) -> str | None:
    """The stored image's URL; None when the store is full and the server would rather answer inline."""
    try:
        image_id = await run_in_threadpool(room.put, image, job.output_format)
    except APIError as error:
        if error.code == "storage_full" and services.settings.storage_full == "b64":
            return None
        raise
    return temp_image_url(base_url, image_id)


async def images_response(
    rendered: Rendered, job: Job, request: ImageRequestBase, base_url: str, services: Services, room: Room | None
) -> ImagesResponse:
    """The synchronous body for `rendered`, its images signed: inline, or behind URLs under
    `base_url` when `room` is held. An async job's result is built here too, so it is the very
    body the synchronous call would have answered."""
    images = await run_in_threadpool(with_credentials, services.credentials, rendered.images, job)
    revised_prompt = job.prompt or None  # variations have no prompt
    inline = room is None
    data = []
    for image, seed in zip(images, job.seeds, strict=True):
        url = None if inline or room is None else await store_url(image, job, base_url, services, room)
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
        usage=Usage.model_validate(rendered.usage.openai()),
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


async def _stream(
    engine: Engine, job: Job, request: PromptedRequest, http: Request, credentials: ContentCredentials | None
) -> StreamingResponse:
    """Start the stream once the first event exists, so a failure before any image (an unknown
    model, a failed load) is still a plain HTTP error; later failures become an `error` event,
    which the SDKs raise. A client that hangs up before the first event (a cold start) cancels
    the job as one waiting for images does."""
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
            usage=Usage.model_validate(event.usage.openai()) if event.usage is not None else None,
            **settings,
        )
        return _sse(payload.model_dump(exclude_none=True))

    events = aiter(engine.stream(job))
    try:
        first = await unless_disconnected(http, anext(events))
    except BaseException:
        await events.aclose()
        raise

    async def signed(event: ImageEvent) -> ImageEvent:
        """A completed image with its content credentials; previews stay unsigned."""
        if event.kind != "completed" or credentials is None:
            return event
        [data] = await run_in_threadpool(with_credentials, credentials, [event.data], job)
        return dataclasses.replace(event, data=data)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield encode(await signed(first))
            async for event in events:
                yield encode(await signed(event))
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
