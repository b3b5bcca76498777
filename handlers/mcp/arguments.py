"""The tools' arguments, as agents see them in `tools/list`.

Each field is the HTTP API's own (its type, bounds and description come from the request
schemas), so a tool takes exactly what the matching route takes; only where an agent needs more
to act on is the description said again. Unknown arguments are refused by name, where the HTTP
API ignores them: an agent that guessed a name should hear so.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from handlers.images.schemas import MAX_INPUT_IMAGES, ImageEditForm, ImageGenerationRequest

_SAID_AGAIN = {
    "model": "A model id from `list_models` (or an OpenAI name such as `gpt-image-2`, mapped to one). "
    "Omitted: the server's default model.",
    "size": "`WxH` in pixels, e.g. `1024x1024`, within the model's bounds (`list_models` gives each model's "
    "sizes, min/max side and multiple), or `auto`. Omitted: the model's default size (for an edit, the "
    "input image's size).",
    "n": "How many images to make (1-10, at most the model's max_n); each comes back as its own image block.",
    "seed": "Seed of the first image (image i uses seed + i). Send the seed a result reports to remake it.",
    "num_inference_steps": "Denoising steps (more: slower, finer); overrides what `quality` picks.",
    "lora": "Up to 4 LoRAs the model offers (`list_models` gives each model's `loras`), e.g. "
    '`[{"name": "pixel-art", "scale": 0.8}]`.',
}


def _field(source: type[BaseModel], name: str) -> tuple[Any, FieldInfo]:
    field = copy.copy(source.model_fields[name])
    if name in _SAID_AGAIN:
        field.description = _SAID_AGAIN[name]
    return field.annotation, field


def _arguments(name: str, source: type[BaseModel], fields: tuple[str, ...], **more: Any) -> type[BaseModel]:
    picked = {field: _field(source, field) for field in fields}
    return create_model(name, __config__=ConfigDict(extra="forbid"), **picked, **more)


_COMMON = ("prompt", "model", "size", "n", "quality", "seed", "negative_prompt", "num_inference_steps", "lora")

GenerateImageArguments = _arguments(
    "GenerateImageArguments",
    ImageGenerationRequest,
    (*_COMMON, "background", "output_format"),
)

_IMAGE = (
    "A PNG, JPEG or WEBP image as base64, as a `data:image/...;base64,` URL, or as a temp-image URL "
    "this server returned (`.../v1/temp-images/...`)."
)
EditImageArguments = _arguments(
    "EditImageArguments",
    ImageEditForm,
    (*_COMMON, "output_format"),
    image=(
        str | list[str],
        Field(
            description=f"The image to edit. {_IMAGE} A list (up to {MAX_INPUT_IMAGES}) where the model takes "
            "references (`list_models`: max_input_images): the first is edited, the others are what the "
            "prompt refers to.",
        ),
    ),
    mask=(
        str | None,
        Field(
            None,
            description=f"Where to edit: {_IMAGE} Fully transparent pixels (alpha = 0) mark the area to "
            "repaint; the same size as the image. Omitted: the image's own transparent pixels, else the "
            "whole image under the prompt.",
        ),
    ),
)


class ListModelsArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        description="The job's id (`imgjob_...`), as the 202 of a request sent with `Prefer: respond-async` "
        "or `GET /v1/images/jobs` gives it. Only the key that made a job sees it."
    )
