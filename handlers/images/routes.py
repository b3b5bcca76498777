"""POST /v1/images/generations, /edits and /variations: each parses, resolves a Job, runs it and responds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from handlers.deps import ServicesDep
from handlers.images.budgets import check_output_budget
from handlers.images.resolve import resolve_edit, resolve_generation, resolve_variation
from handlers.images.respond import run_and_respond
from handlers.images.schemas import (
    ImageEditFiles,
    ImageEditForm,
    ImageGenerationRequest,
    ImagesResponse,
    ImageVariationFiles,
    ImageVariationForm,
    StreamEvent,
)
from handlers.images.uploads import inlined, multipart_body, read_form
from handlers.protocol import ErrorResponse

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}
_STREAMED = {200: {"content": {"text/event-stream": {"schema": inlined(StreamEvent.model_json_schema())}}}}
router = APIRouter(tags=["images"], responses=_ERRORS)


@router.post(
    "/images/generations", response_model=ImagesResponse, response_model_exclude_none=True, responses=_STREAMED
)
async def create_image(
    body: ImageGenerationRequest, request: Request, services: ServicesDep
) -> ImagesResponse | StreamingResponse:
    """Create images from a prompt. With `stream: true`, server-sent events instead."""
    job = resolve_generation(body, services.served, services.settings.max_prompt_chars)
    check_output_budget(job, services.settings.max_output_pixels)
    return await run_and_respond(job, body, request, services)


@router.post(
    "/images/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    openapi_extra=multipart_body(ImageEditForm, ImageEditFiles),
    responses=_STREAMED,
)
async def edit_image(request: Request, services: ServicesDep) -> ImagesResponse | StreamingResponse:
    """Edit an image: multipart, as the OpenAI SDKs send it (`image` or `image[]`, `mask`)."""
    body, edit = await read_form(
        request,
        ImageEditForm,
        services.settings.max_image_pixels,
        mask=True,
        served=services.served,
        max_total_pixels=services.settings.max_request_pixels,
    )
    job = resolve_edit(body, edit, services.served, services.settings.max_prompt_chars)
    check_output_budget(job, services.settings.max_output_pixels)
    return await run_and_respond(job, body, request, services)


@router.post(
    "/images/variations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    openapi_extra=multipart_body(ImageVariationForm, ImageVariationFiles),
)
async def create_variation(request: Request, services: ServicesDep) -> ImagesResponse | StreamingResponse:
    """Variations of an image, conditioned on the image itself (no prompt)."""
    body, image = await read_form(
        request,
        ImageVariationForm,
        services.settings.max_image_pixels,
        mask=False,
        served=services.served,
        max_total_pixels=services.settings.max_request_pixels,
    )
    job = resolve_variation(body, image, services.served)
    check_output_budget(job, services.settings.max_output_pixels)
    return await run_and_respond(job, body, request, services)
