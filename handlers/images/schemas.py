"""The image routes' wire shapes: a pydantic mirror of the OpenAI Images API, plus our typed, bounded extensions.

Every bound a request has regardless of the model is here (and only here): the schema refuses it at
the HTTP edge, before anything is resolved. Bounds that depend on the model are in `resolve`.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 32_000  # the hard ceiling; the server's own limit is a setting below it
MAX_SEED = 2**32 - 1
MAX_LORAS = 4  # per request: each is a full pass of extra matmuls per layer
MAX_LORA_SCALE = 2.0  # past ±2 a LoRA only burns the image
MAX_INPUT_IMAGES = 16  # OpenAI's bound on an edit's images; each model's own may be lower

Quality = Literal["low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"]
StyleName = Literal["natural", "vivid"]
ResponseFormat = Literal["url", "b64_json"]
OutputFormat = Literal["png", "jpeg", "webp"]
OUTPUT_FORMATS = ("png", "jpeg", "webp")
Background = Literal["transparent", "opaque", "auto"]


class LoraRequest(BaseModel):
    """One LoRA for a request: a name the model offers (GET /v1/models/{id}) and its strength."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="A LoRA the model offers (see its `loras`).")
    scale: float = Field(
        1.0,
        ge=-MAX_LORA_SCALE,
        le=MAX_LORA_SCALE,
        allow_inf_nan=False,
        description=f"Strength, {-MAX_LORA_SCALE} to {MAX_LORA_SCALE}; 0 is the same as leaving it out.",
    )


def _lora_part(value: object) -> object:
    """A multipart `lora` part: JSON (an object or a list of them), or `name` / `name:scale`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("a `lora` part that starts with [ or { must be JSON") from None
    name, colon, scale = text.rpartition(":") if ":" in text else (text, "", "")
    if not colon:
        return {"name": text}
    try:
        return {"name": name, "scale": float(scale)}
    except ValueError:
        raise ValueError(f"{text!r}: a `lora` part is `name` or `name:scale` (scale a number)") from None


class _Extensions(BaseModel):
    """Fields OpenAI does not have; the SDKs send them through `extra_body`."""

    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Seed of the first image; image i uses seed + i. Random if omitted."
    )
    negative_prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="What the image should not show."
    )
    num_inference_steps: int | None = Field(
        None, ge=1, le=200, description="Denoising steps; overrides the steps that `quality` picks."
    )
    guidance_scale: float | None = Field(
        None, ge=0.0, le=30.0, description="Classifier-free guidance; overrides the guidance that `style` picks."
    )
    lora: list[LoraRequest] | None = Field(
        None,
        max_length=MAX_LORAS,
        description=f'Up to {MAX_LORAS} LoRAs, e.g. `[{{"name": "pixel-art", "scale": 0.8}}]`. Multipart '
        "(edits, variations): one `lora` part holding that JSON, or one `lora` part per LoRA spelled "
        "`name` or `name:scale`.",
    )

    webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="With `Prefer: respond-async`: where the job's end is POSTed, signed per Standard Webhooks.",
    )

    @field_validator("lora", mode="before")
    @classmethod
    def _lora_parts(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            parts = [_lora_part(part) for part in value]
            # One JSON part may hold the whole list.
            return [item for part in parts for item in (part if isinstance(part, list) else [part])]
        return value


class ImageRequestBase(_Extensions):
    """What every image request takes (variations too)."""

    # Clients send fields we do not know (newer OpenAI fields); ignoring them keeps them working.
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(
        None, max_length=256, description="A served model id, or an OpenAI model name mapped to one."
    )
    n: int = Field(1, ge=1, le=10, description="Number of images (1-10, and at most the model's max_n).")
    size: str | None = Field(
        None,
        max_length=32,
        description="`auto`, an OpenAI size such as `1024x1024`, or any `WxH` within the model's bounds.",
    )
    quality: Quality | None = Field(
        None,
        description="Picks the model's step count: `low` fewest; `medium`/`standard`/`auto` the model's own; "
        "`high`/`hd`/`xhigh`/`max` most.",
    )
    response_format: ResponseFormat | None = Field(
        None,
        description="`url` or `b64_json`. Omitted: `b64_json` for GPT image model names (`gpt-image*`, "
        "`chatgpt-image*`), as OpenAI answers them, `url` for any other name (unless the server says otherwise).",
    )
    output_format: OutputFormat = Field("png", description="Encoding of the images: `png`, `jpeg` or `webp`.")
    output_compression: int | None = Field(
        None, ge=0, le=100, description="Quality 0-100 for `jpeg` and `webp` (default 90); ignored for `png`."
    )
    background: Background | None = Field(
        None,
        description="`auto`/`opaque`, or `transparent`: the subject cut out by the matting model, the rest "
        "alpha 0 (`png` or `webp` only).",
    )
    moderation: Literal["low", "auto"] | None = Field(None, description="Accepted for compatibility; no moderation.")
    user: str | None = Field(None, max_length=256, description="End-user id; accepted, not used.")

    @field_validator("output_format", mode="before")
    @classmethod
    def _encodable(cls, value: object) -> object:
        if isinstance(value, str) and value not in OUTPUT_FORMATS:
            raise ValueError(f"this server encodes {', '.join(OUTPUT_FORMATS)}; {value!r} is not available")
        return value

    @field_validator("*")
    @classmethod
    def _text_is_unicode(cls, value: object) -> object:
        # JSON may carry lone surrogates ("\ud800"); they cannot be encoded back into any
        # answer, so they are the caller's error, named, not a 500 later on.
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        return value


class PromptedRequest(ImageRequestBase):
    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="Text description of the image.")
    style: StyleName | None = Field(
        None, description="`natural` (default: the prompt as given) or `vivid` (the model's vivid template)."
    )
    stream: bool = Field(False, description="Server-sent events: partial images, then each completed image.")
    partial_images: int = Field(0, ge=0, le=3, description="Previews per image when streaming (0-3).")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("the prompt must not be empty")
        return prompt


class ImageGenerationRequest(PromptedRequest):
    """Body of POST /v1/images/generations."""

    # JSON has numbers and booleans of its own: `"n": "7"` or `"n": true` is the caller's mistake,
    # not something to coerce (multipart forms, where every field is text, stay lax).
    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "model": "gpt-image-2",
                    "prompt": "A lighthouse on a rocky coast at dusk, oil painting",
                    "size": "1024x1024",
                    "quality": "high",
                },
                {
                    "model": "tiny-sd",
                    "prompt": "a red fox",
                    "n": 2,
                    "size": "512x512",
                    "response_format": "url",
                    "seed": 42,
                    "negative_prompt": "blurry",
                    "num_inference_steps": 4,
                },
            ]
        },
    )


class ImageEditForm(PromptedRequest):
    """Fields of POST /v1/images/edits besides the files (multipart: numbers arrive as text)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "gpt-image-2", "prompt": "Put the cat from the second image on the sofa", "size": "auto"},
            ]
        }
    )


class ImageVariationForm(ImageRequestBase):
    """Fields of POST /v1/images/variations besides the image (multipart)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"model": "tiny-sd", "n": 2, "size": "512x512"}]})


class ImageEditFiles(BaseModel):
    """The file parts of an edit, for the OpenAPI schema only (the route reads the form itself)."""

    image: bytes = Field(
        description="The image to edit (PNG, JPEG or WEBP); up to 16 as `image[]` on a model that "
        "takes references: the first is edited, the others are what the prompt refers to."
    )
    mask: bytes | None = Field(
        None,
        description="PNG whose fully transparent pixels (alpha = 0) mark the area of the first image to edit; "
        "that image's size.",
    )


class ImageVariationFiles(BaseModel):
    """The file part of a variation, for the OpenAPI schema only."""

    image: bytes = Field(description="The image to vary (PNG, JPEG or WEBP).")


class Image(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None
    seed: int | None = Field(None, description="The seed this image was made with: send it again to remake it.")


class InputTokensDetails(BaseModel):
    text_tokens: int
    image_tokens: int


class Usage(BaseModel):
    """OpenAI's token usage, always complete (a partial or missing one breaks clients): the
    prompt's tokens by the model's tokenizer, input and output images as latent patches."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    total_tokens: int


class ImagesResponse(BaseModel):
    """As OpenAI's: the images plus the settings they were made with, and the tokens it took."""

    created: int
    data: list[Image]
    size: str | None = None
    quality: str | None = None
    output_format: OutputFormat | None = None
    background: Literal["transparent", "opaque"] | None = None
    usage: Usage


class StreamEvent(BaseModel):
    """One server-sent event of a streamed generation or edit (`type` says which)."""

    type: Literal[
        "image_generation.partial_image",
        "image_generation.completed",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    b64_json: str
    created_at: int
    size: str
    quality: str
    output_format: OutputFormat
    background: Literal["transparent", "opaque", "auto"]
    partial_image_index: int | None = None
    image_index: int = Field(description="Which of the request's n images this event is about (0-based).")
    seed: int = Field(description="The seed this image is made with.")
    usage: Usage | None = Field(None, description="On completed events: the whole request's usage.")
