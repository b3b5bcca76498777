"""A pydantic mirror of the OpenAI Images and Models APIs, plus our typed, bounded extensions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 32_000  # the hard ceiling; the server's own limit is a setting below it
MAX_SEED = 2**32 - 1

Quality = Literal["standard", "hd", "low", "medium", "high", "auto"]
StyleName = Literal["natural", "vivid"]
ResponseFormat = Literal["url", "b64_json"]


class _Extensions(BaseModel):
    """Fields OpenAI does not have; the SDKs send them through `extra_body`."""

    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Seed of the first image; image i uses seed + i. Random if omitted."
    )
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="What the image should not show.")
    num_inference_steps: int | None = Field(
        None, ge=1, le=200, description="Denoising steps; overrides the steps that `quality` picks."
    )
    guidance_scale: float | None = Field(
        None, ge=0.0, le=30.0, description="Classifier-free guidance; overrides the guidance that `style` picks."
    )


class _ImageRequest(_Extensions):
    # Clients send fields we do not know (newer OpenAI fields); ignoring them keeps them working.
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="Text description of the image.")
    model: str | None = Field(None, description="A served model id, or an OpenAI model name mapped to one.")
    n: int = Field(1, ge=1, le=10, description="Number of images (1-10, and at most the model's max_n).")
    size: str | None = Field(
        None, description="`auto`, an OpenAI size such as `1024x1024`, or any `WxH` within the model's bounds."
    )
    quality: Quality | None = Field(None, description="`standard` or `hd` pick the model's step counts.")
    response_format: ResponseFormat | None = Field(None, description="`url` (default) or `b64_json`.")
    user: str | None = Field(None, max_length=256, description="End-user id; accepted and logged, not used.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("the prompt must not be empty")
        return prompt


class ImageGenerationRequest(_ImageRequest):
    """Body of POST /v1/images/generations."""

    style: StyleName | None = Field(
        None, description="`natural` (default: the prompt as given) or `vivid` (the model's vivid template)."
    )


class ImageEditForm(_ImageRequest):
    """Fields of POST /v1/images/edits besides the files (multipart: numbers arrive as text)."""

    style: StyleName | None = None


class ImageEditFiles(BaseModel):
    """The file parts of an edit, for the OpenAPI schema only (the route reads the form itself)."""

    image: bytes = Field(description="The image to edit (PNG, JPEG or WEBP). Also accepted as `image[]`.")
    mask: bytes | None = Field(
        None, description="PNG whose fully transparent pixels (alpha = 0) mark the area to edit; the image's size."
    )


class Image(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[Image]


class ModelCapabilities(BaseModel):
    tasks: list[str]
    sizes: list[str]
    default_size: str
    min_side: int
    max_side: int
    size_multiple: int
    max_n: int
    family: str
    negative_prompt: bool


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    type: Literal["image_generation"] = "image_generation"
    description: str
    aliases: list[str]
    capabilities: ModelCapabilities


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error, from every route: OpenAI's shape."""

    error: ErrorBody
