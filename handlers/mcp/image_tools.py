"""The image tools' bodies: arguments → the request schema → `resolve` → the Engine → the store,
the same path the HTTP routes take, so a tool call is a request like any other."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_types import CallToolResult
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from handlers.deps import Services
from handlers.images.budgets import check_output_budget
from handlers.images.resolve import resolve_edit, resolve_generation
from handlers.images.respond import hold_room, in_room, store_url
from handlers.images.schemas import ImageEditForm, ImageGenerationRequest
from handlers.images.uploads import edit_input
from handlers.mcp.inputs import image_bytes
from handlers.mcp.progress import Report, step_progress
from handlers.mcp.results import images_result, json_result
from handlers.provenance.credentials import with_credentials
from handlers.request_log import note_job
from handlers.routes.models import describe
from handlers.stores.room import Room
from handlers.urls import public_base_url
from pipelines.contract.errors import APIError
from pipelines.contract.job import Job


@dataclass(frozen=True)
class ToolCall:
    """What one tool call runs with: the app's services, the HTTP request it came in (for the
    temp URLs' host), and where its progress goes."""

    services: Services
    http: Request | None
    report: Report | None


async def generate_image(arguments: BaseModel, call: ToolCall) -> CallToolResult:
    body = ImageGenerationRequest.model_validate(arguments.model_dump(exclude_none=True))
    job = resolve_generation(body, call.services.served, call.services.settings.max_prompt_chars)
    return await _run(job, call)


async def edit_image(arguments: BaseModel, call: ToolCall) -> CallToolResult:
    fields = arguments.model_dump(exclude_none=True)
    given = fields.pop("image")
    mask = fields.pop("mask", None)
    store = call.services.store
    images = [await image_bytes(each, "image", store) for each in ([given] if isinstance(given, str) else given)]
    masks = [] if mask is None else [await image_bytes(mask, "mask", store)]
    body = ImageEditForm.model_validate(fields)
    settings = call.services.settings
    edit = await edit_input(
        images,
        masks,
        settings.max_image_pixels,
        model=body.model,
        task="edit",
        served=call.services.served,
        max_total_pixels=settings.max_request_pixels,
    )
    job = resolve_edit(body, edit, call.services.served, call.services.settings.max_prompt_chars)
    return await _run(job, call)


async def list_models(_: BaseModel, call: ToolCall) -> CallToolResult:
    models = [describe(spec, call.services).model_dump() for spec in call.services.served.specs]
    return json_result({"models": models})


async def _run(job: Job, call: ToolCall) -> CallToolResult:
    services = call.services
    check_output_budget(job, services.settings.max_output_pixels)
    note_job(job)
    # The temp URLs' room is held before the work, as for an answer by URL (images inline anyway).
    room = None if call.http is None else await hold_room(job, services)

    async def answer() -> CallToolResult:
        async with step_progress(call.report):
            rendered = await services.engine.run(job)
        images = await run_in_threadpool(with_credentials, services.credentials, rendered.images, job)
        urls = [await _url(image, job, call, room) for image in images]
        if any(urls):
            await services.store.publish()  # no URL is handed out before any server can serve it
        return images_result(images, job, urls, services.settings.image_ttl_seconds, rendered.usage)

    return await in_room(room, answer())


async def _url(image: bytes, job: Job, call: ToolCall, room: Room | None) -> str | None:
    """The image's temp URL; none when the store is full: the image is in the answer anyway."""
    if call.http is None or room is None:
        return None
    try:
        return await store_url(
            image, job, public_base_url(call.http, call.services.settings.public_url), call.services, room
        )
    except APIError as error:
        if error.code == "storage_full":
            return None
        raise
