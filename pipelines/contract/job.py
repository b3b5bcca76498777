"""The Job: a fully resolved request that crosses to the Worker (and the Modal boundary) unchanged."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pipelines.contract.usage import Usage

TaskName = Literal["generate", "edit", "variation"]


def denoising_steps(steps: int, strength: float) -> int:
    """The steps an image-to-image run really takes: diffusers skips the first
    `steps * (1 - strength)` and runs `int(steps * strength)` of them."""
    return steps if strength >= 1.0 else int(steps * strength)


def steps_for_strength(steps: int, strength: float) -> int:
    """`steps`, raised where needed so that `denoising_steps` is at least one."""
    return steps if denoising_steps(steps, strength) >= 1 else max(steps, math.ceil(1 / strength))


@dataclass(frozen=True)
class LoraUse:
    """One LoRA as a Job carries it: its name, where its weights are, and its scale."""

    name: str
    source: str  # a file path, or "hub:org/repo[@revision][/file.safetensors]"
    scale: float


@dataclass(frozen=True)
class Job:
    """Everything the Worker needs and nothing it must decide: no API defaults happen past here.

    `width`/`height` are what the pipeline renders at (within the model's bounds and multiple);
    `output_width`/`output_height` what the caller gets. They differ when a caller asks for a
    size the model cannot render directly (an OpenAI size past its bounds, an odd-sized upload).
    """

    task: TaskName
    model: str
    prompt: str
    n: int
    width: int
    height: int
    output_width: int
    output_height: int
    steps: int
    guidance: float
    seeds: tuple[int, ...]
    negative_prompt: str | None = None
    # Edits: the input image as uploaded, and the area to repaint as a PNG in diffusers'
    # convention (white = repaint, black = keep), already sized like the image. No mask with an
    # image means the whole image is repainted under the prompt (image-to-image).
    images: tuple[bytes, ...] = ()
    mask: bytes | None = None
    strength: float = 1.0
    output_format: Literal["png", "jpeg", "webp"] = "png"
    # "transparent": the subject cut out by the matting model, the rest alpha 0 (png and webp only).
    background: Literal["opaque", "transparent"] = "opaque"
    output_compression: int | None = None
    partial_images: int = 0
    # The LoRAs this job runs with, in the order asked; none: the base weights alone.
    loras: tuple[LoraUse, ...] = ()
    # Unix time after which nobody waits for the result (set where a host answers by a deadline,
    # counted from when the request arrived): the Worker skips a job that starts later and stops
    # one still running then. Wall-clock time, because it crosses machines (the Modal boundary).
    deadline: float | None = None


def square_generation(model: str, prompt: str, size: int, steps: int, seed: int) -> Job:
    """One size x size image of `model` at guidance 0, resolved: what the benchmarks run without HTTP."""
    return Job(
        task="generate",
        model=model,
        prompt=prompt,
        n=1,
        width=size,
        height=size,
        output_width=size,
        output_height=size,
        steps=steps,
        guidance=0.0,
        seeds=(seed,),
    )


@dataclass(frozen=True)
class ImageEvent:
    """One step of a streamed Job: a partial preview of image `image_index`, or that image done.

    Picklable, so a Modal generator method can yield it across the boundary unchanged.
    """

    kind: Literal["partial", "completed"]
    image_index: int
    data: bytes  # encoded in the Job's output_format
    partial_index: int | None = None  # 0-based, partials only
    usage: Usage | None = None  # the whole Job's, on completed events only


@dataclass(frozen=True)
class Rendered:
    """A Job's outcome: its images, encoded in its output_format, in seed order, and its token usage."""

    images: list[bytes]
    usage: Usage
