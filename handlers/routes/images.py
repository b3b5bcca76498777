"""POST /v1/images/generations and /v1/images/edits: parse, run on the Engine, shape the response."""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from handlers.deps import Services, ServicesDep
from handlers.edit_inputs import read_edit_input
from handlers.errors import invalid
from handlers.job import Job
from handlers.jobs import edit_job, generation_job, resolve_model
from handlers.protocol import (
    ErrorResponse,
    Image,
    ImageEditFiles,
    ImageEditForm,
    ImageGenerationRequest,
    ImagesResponse,
    ResponseFormat,
)
from handlers.urls import temp_image_url

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}
router = APIRouter(tags=["images"], responses=_ERRORS)


async def _respond(
    encoded: list[bytes], job: Job, response_format: ResponseFormat | None, request: Request, services: Services
) -> ImagesResponse:
    if response_format == "b64_json":
        data = [Image(b64_json=base64.b64encode(image).decode(), revised_prompt=job.prompt) for image in encoded]
    else:
        data = []
        for image in encoded:
            image_id = await run_in_threadpool(services.store.put, image, job.output_format)
            url = temp_image_url(request, services.settings.public_url, image_id)
            data.append(Image(url=url, revised_prompt=job.prompt))
    return ImagesResponse(created=int(time.time()), data=data)


@router.post("/images/generations", response_model=ImagesResponse, response_model_exclude_none=True)
async def create_image(body: ImageGenerationRequest, request: Request, services: ServicesDep) -> ImagesResponse:
    spec = resolve_model(body.model, services.served, "generate")
    job = generation_job(body, spec, services.settings.max_prompt_chars)
    return await _respond(await services.engine.run(job), job, body.response_format, request, services)


def _multipart_schema() -> dict[str, Any]:
    schema = ImageEditForm.model_json_schema()
    files = ImageEditFiles.model_json_schema()
    schema["properties"] = {**files["properties"], **schema["properties"]}
    schema["required"] = ["image", *schema.get("required", [])]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


async def _file(form: FormData, names: tuple[str, ...], param: str) -> list[bytes]:
    parts = [part for name in names for part in form.getlist(name)]
    if any(not isinstance(part, UploadFile) for part in parts):
        raise invalid(param, f"'{param}' must be sent as a file part, not as text.", code="invalid_image")
    return [await part.read() for part in parts if isinstance(part, UploadFile)]


@router.post(
    "/images/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    openapi_extra=_multipart_schema(),
)
async def edit_image(request: Request, services: ServicesDep) -> ImagesResponse:
    """Edit or extend an image. Multipart, as the OpenAI SDKs send it; `image[]` is accepted."""
    async with request.form() as form:
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        for name in ("image", "image[]", "mask"):
            fields.pop(name, None)
        body = ImageEditForm.model_validate(fields)
        spec = resolve_model(body.model, services.served, "edit")
        images = await _file(form, ("image", "image[]"), "image")
        masks = await _file(form, ("mask",), "mask")
    if not images:
        raise invalid("image", "Missing required parameter: 'image'.", code="missing_required_parameter")
    if len(images) > 1:
        raise invalid("image", f"Model {spec.id} edits one image at a time; {len(images)} were sent.",
                      code="too_many_images")
    if len(masks) > 1:
        raise invalid("mask", "Send at most one mask.")
    edit = await run_in_threadpool(read_edit_input, images[0], masks[0] if masks else None)
    job = edit_job(body, edit, spec, services.settings.max_prompt_chars)
    return await _respond(await services.engine.run(job), job, body.response_format, request, services)
