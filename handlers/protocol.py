"""A pydantic mirror of the OpenAI Models API and of its error shape (the image routes' are in handlers/images)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
    max_input_images: int = Field(description="Images an edit takes: the first is edited, the others are references.")
    edits: Literal["instruction", "image_to_image"] = Field(
        description="What an edit without a mask does: follow the prompt as an instruction, or re-imagine the image."
    )


class ModelLora(BaseModel):
    name: str = Field(description="What a request's `lora` names.")
    family: str | None = Field(None, description="The family it was made for, where known.")
    model: str | None = Field(None, description="The one model it is for, where it is scoped to one.")


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    type: Literal["image_generation"] = "image_generation"
    description: str
    aliases: list[str]
    capabilities: ModelCapabilities
    state: Literal["not_loaded", "loading", "ready", "failed", "remote"] = Field(
        description="not_loaded (loads on first use), loading, ready, failed (see /health/ready), or remote (Modal)."
    )
    loras: list[ModelLora] = Field([], description="LoRAs a request for this model may name in `lora`.")


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
