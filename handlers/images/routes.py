"""POST /v1/images/generations, /edits and /variations: parse, run on the Engine, shape the response."""

from __future__ import annotations

import base64
import time
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile

from handlers.deps import Services, ServicesDep
from handlers.disconnect import unless_disconnected
from handlers.images.uploads import EditInput, read_edit_input
from handlers.images.resolve import (
    check_input_images,
    edit_job,
    edit_needs,
    generation_job,
    resolve_model,
    response_format,
    variation_job,
)
from handlers.protocol import (
    ErrorResponse,
    Image,
    ImageEditFiles,
    ImageEditForm,
    ImageGenerationRequest,
    ImageRequestBase,
    ImagesResponse,
    ImageVariationFiles,
    ImageVariationForm,
    StreamEvent,
)
from handlers.request_log import note_job
from handlers.images.respond import stream_response
from handlers.urls import temp_image_url
from pipelines.contract.catalog import ModelSpec
from pipelines.contract.errors import APIError, invalid
from pipelines.contract.job import Job, TaskName

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 429, 500, 503)
}
_STREAMED = {200: {"content": {"text/event-stream": {"schema": StreamEvent.model_json_schema()}}}}
router = APIRouter(tags=["images"], responses=_ERRORS)
MAX_INPUT_IMAGES = 16  # OpenAI's bound; each model's own may be lower
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
Form = TypeVar("Form", bound=ImageRequestBase)


async def _url(image: bytes, job: Job, http: Request, services: Services) -> str | None:
    """The stored image's URL; None when the store is full and the server would rather answer inline."""
    try:
        image_id = await run_in_threadpool(services.store.put, image, job.output_format)
    except APIError as error:
        if error.code == "storage_full" and services.settings.storage_full == "b64":
            return None
        raise
    return temp_image_url(http, services.settings.public_url, image_id)


async def _respond(encoded: list[bytes], job: Job, request: ImageRequestBase, http: Request,
                   services: Services) -> ImagesResponse:
    revised_prompt = job.prompt or None  # variations have no prompt
    inline = response_format(request, services.settings.response_format) == "b64_json"
    data = []
    for image, seed in zip(encoded, job.seeds, strict=True):
        url = None if inline else await _url(image, job, http, services)
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


@router.post("/images/generations", response_model=ImagesResponse, response_model_exclude_none=True,
             responses=_STREAMED)
async def create_image(
    body: ImageGenerationRequest, request: Request, services: ServicesDep
) -> ImagesResponse | StreamingResponse:
    """Create images from a prompt. With `stream: true`, server-sent events instead."""
    spec = resolve_model(body.model, services.served, "generate")
    job = generation_job(body, spec, services.settings.max_prompt_chars, services.served.loras)
    note_job(job)
    if body.stream:
        return await stream_response(services.engine, job, body)
    images = await unless_disconnected(request, services.engine.run(job))
    return await _respond(images, job, body, request, services)


def _multipart(form: type[BaseModel], files: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI description of a multipart body (the routes read the form themselves)."""
    schema = form.model_json_schema()
    file_schema = files.model_json_schema()
    schema["properties"] = {**file_schema["properties"], **schema["properties"]}
    schema["required"] = [*file_schema.get("required", []), *schema.get("required", [])]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


async def _files(form: FormData, names: tuple[str, ...], param: str) -> list[bytes]:
    parts = [part for name in names for part in form.getlist(name)]
    if any(not isinstance(part, UploadFile) for part in parts):
        raise invalid(param, f"'{param}' must be sent as a file part, not as text.", code="invalid_image")
    return [await part.read() for part in parts if isinstance(part, UploadFile)]


async def _read_form(
    request: Request, model: type[Form], services: Services, task: TaskName
) -> tuple[Form, ModelSpec, EditInput]:
    """The multipart fields (validated), the model, and the checked images and mask."""
    if not request.headers.get("content-type", "").lower().startswith(_FORMS):
        raise invalid(None, f"{request.url.path} takes multipart/form-data, as the OpenAI SDKs send it: the image "
                      "files and the other fields as form parts (curl: -F image=@photo.png -F prompt=...), not JSON.",
                      code="invalid_content_type")
    async with request.form() as form:
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        for name in ("image", "image[]", "mask"):
            fields.pop(name, None)
        # The one field that may come as several parts (the SDKs name a list's parts `lora[]`).
        loras = [value for name in ("lora", "lora[]") for value in form.getlist(name) if isinstance(value, str)]
        fields.pop("lora[]", None)
        if loras:
            fields["lora"] = loras
        body = model.model_validate(fields)
        resolve_model(body.model, services.served, task)  # an unknown model fails before any decoding
        images = await _files(form, ("image", "image[]"), "image")
        masks = await _files(form, ("mask",), "mask") if task == "edit" else []
    if not images:
        raise invalid("image", "Missing required parameter: 'image'.", code="missing_required_parameter")
    if len(images) > MAX_INPUT_IMAGES:
        raise invalid("image", f"An edit takes at most {MAX_INPUT_IMAGES} images; {len(images)} were sent.",
                      code="too_many_images")
    if len(masks) > 1:
        raise invalid("mask", "Send at most one mask.")
    edit = await run_in_threadpool(read_edit_input, images[0], masks[0] if masks else None, references=images[1:],
                                   max_pixels=services.settings.max_image_pixels)
    spec = resolve_model(body.model, services.served, task, edit_needs(edit) if task == "edit" else ())
    check_input_images(spec, len(images), services.served)
    return body, spec, edit


@router.post("/images/edits", response_model=ImagesResponse, response_model_exclude_none=True,
             openapi_extra=_multipart(ImageEditForm, ImageEditFiles), responses=_STREAMED)
async def edit_image(request: Request, services: ServicesDep) -> ImagesResponse | StreamingResponse:
    """Edit an image: multipart, as the OpenAI SDKs send it (`image` or `image[]`, `mask`)."""
    body, spec, edit = await _read_form(request, ImageEditForm, services, "edit")
    job = edit_job(body, edit, spec, services.settings.max_prompt_chars, services.served.loras)
    note_job(job)
    if body.stream:
        return await stream_response(services.engine, job, body)
    images = await unless_disconnected(request, services.engine.run(job))
    return await _respond(images, job, body, request, services)


@router.post("/images/variations", response_model=ImagesResponse, response_model_exclude_none=True,
             openapi_extra=_multipart(ImageVariationForm, ImageVariationFiles))
async def create_variation(request: Request, services: ServicesDep) -> ImagesResponse:
    """Variations of an image, conditioned on the image itself (no prompt)."""
    body, spec, edit = await _read_form(request, ImageVariationForm, services, "variation")
    job = variation_job(body, edit, spec, services.served.loras)
    note_job(job)
    images = await unless_disconnected(request, services.engine.run(job))
    return await _respond(images, job, body, request, services)
