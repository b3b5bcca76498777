"""From a validated request to a fully resolved Job: every API default and every rule that depends on
the model is applied here, with no HTTP in sight (tests/test_job_resolution.py calls it directly).

`resolve_generation`, `resolve_edit` and `resolve_variation` are what the routes call: each picks
the model once and builds the Job for it. The `*_job` builders take a model already picked."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

from handlers.images.budgets import check_input_images
from handlers.images.schemas import (
    MAX_SEED,
    ImageEditForm,
    ImageGenerationRequest,
    ImageRequestBase,
    ImageVariationForm,
    PromptedRequest,
)
from handlers.images.sizes import Size, parse_size, render_size
from handlers.images.uploads import EditInput
from pipelines.contract import errors
from pipelines.contract.catalog import ModelSpec
from pipelines.contract.errors import invalid
from pipelines.contract.job import Job, TaskName, steps_for_strength
from pipelines.contract.loras import LoraLibrary
from pipelines.contract.served import Need, ServedModels, is_gpt_image_name

# Every quality OpenAI takes, onto the catalog's three step counts: more steps, never fewer,
# as the quality rises (low < medium = standard = auto < high = hd = xhigh = max).
QUALITY_TIER = {
    "low": "low",
    "medium": "standard",
    "standard": "standard",
    "auto": "standard",
    "high": "hd",
    "hd": "hd",
    "xhigh": "hd",
    "max": "hd",
}
NO_LORAS = LoraLibrary()


def resolve_model(name: str | None, served: ServedModels, task: TaskName, needs: Collection[Need] = ()) -> ModelSpec:
    """The served model `name` stands for (the default when omitted), able to do `task`."""
    spec = served.get(name, needs, task)
    if spec is None:
        raise errors.model_not_found(name, [s.id for s in served.specs])
    if task not in spec.tasks:
        raise invalid(
            "model",
            f"Model {spec.id} does not support {task}; it supports: {', '.join(spec.tasks)}.",
            code="unsupported_task",
        )
    return spec


def response_format(request: ImageRequestBase, server_default: str) -> str:
    """An explicit `response_format` wins; else the server's setting; else OpenAI's rule: GPT image
    models answer b64_json (clients written for them read nothing else), other names a URL."""
    if request.response_format is not None:
        return request.response_format
    if server_default != "auto":
        return server_default
    return "b64_json" if is_gpt_image_name(request.model or "") else "url"


def _seeds(seed: int | None, n: int) -> tuple[int, ...]:
    first = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    return tuple(first + i for i in range(n))


def _check(request: ImageRequestBase, spec: ModelSpec) -> None:
    """Limits that depend on the model."""
    if request.n > spec.max_n:
        raise invalid("n", f"Model {spec.id} makes at most {spec.max_n} images per request; n was {request.n}.")
    if request.negative_prompt and not spec.negative_prompt:
        raise invalid(
            "negative_prompt", f"Model {spec.id} does not take a negative prompt.", code="unsupported_parameter"
        )
    if request.num_inference_steps is not None and request.num_inference_steps > spec.max_steps:
        raise invalid(
            "num_inference_steps",
            f"Model {spec.id} takes at most {spec.max_steps} steps; {request.num_inference_steps} were asked.",
        )
    if request.num_inference_steps is not None and request.num_inference_steps < spec.min_steps:
        raise invalid(
            "num_inference_steps",
            f"Model {spec.id} takes at least {spec.min_steps} steps; {request.num_inference_steps} were asked.",
        )
    if request.background == "transparent":
        if not spec.transparent_background:
            raise invalid(
                "background",
                f"Model {spec.id} cannot make transparent backgrounds; use 'opaque' or 'auto'.",
                code="unsupported_parameter",
            )
        if request.output_format == "jpeg":
            raise invalid("background", "A transparent background needs output_format 'png' or 'webp'.")


def _resolve(
    task: TaskName,
    request: ImageRequestBase,
    spec: ModelSpec,
    output: Size,
    prompt: str,
    guidance: float,
    loras: LoraLibrary,
) -> dict[str, Any]:
    """The Job fields every task resolves alike."""
    _check(request, spec)
    asked = [(lora.name, lora.scale) for lora in request.lora or ()]
    width, height = render_size(output, spec)
    return {
        "task": task,
        "model": spec.id,
        "prompt": prompt,
        "negative_prompt": request.negative_prompt or None,
        "n": request.n,
        "steps": request.num_inference_steps or spec.steps[QUALITY_TIER[request.quality or "standard"]],
        "guidance": guidance if request.guidance_scale is None else request.guidance_scale,
        "seeds": _seeds(request.seed, request.n),
        "width": width,
        "height": height,
        "output_width": output[0],
        "output_height": output[1],
        "output_format": request.output_format,
        "output_compression": request.output_compression,
        "background": "transparent" if request.background == "transparent" else "opaque",
        "loras": loras.resolve(spec, asked),
    }


def _prompted(
    task: TaskName,
    request: PromptedRequest,
    spec: ModelSpec,
    output: Size,
    max_prompt_chars: int,
    loras: LoraLibrary,
) -> dict[str, Any]:
    for param, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt or "")):
        if len(text) > max_prompt_chars:
            raise invalid(
                param,
                f"The {param} is {len(text)} characters; the limit is {max_prompt_chars}.",
                code="string_above_max_length",
            )
    style = spec.styles[request.style or "natural"]
    fields = _resolve(task, request, spec, output, style.template.format(prompt=request.prompt), style.guidance, loras)
    fields["partial_images"] = request.partial_images if request.stream else 0
    return fields


def _image_to_image(fields: dict[str, Any], edit: EditInput, strength: float) -> Job:
    # The pipeline runs only a `strength` share of the steps; never let that round down to none.
    fields["steps"] = steps_for_strength(fields["steps"], strength)
    return Job(**fields, images=(edit.image, *edit.references), mask=edit.mask, strength=strength)


def generation_job(
    request: ImageGenerationRequest, spec: ModelSpec, max_prompt_chars: int, loras: LoraLibrary = NO_LORAS
) -> Job:
    output = parse_size(request.size, spec) or spec.default_size
    return Job(**_prompted("generate", request, spec, output, max_prompt_chars, loras))


def edit_job(
    request: ImageEditForm, edit: EditInput, spec: ModelSpec, max_prompt_chars: int, loras: LoraLibrary = NO_LORAS
) -> Job:
    """An edit: the output has the requested size, else the input's; kept pixels stay exact."""
    output = parse_size(request.size, spec) or edit.size
    fields = _prompted("edit", request, spec, output, max_prompt_chars, loras)
    # A transparent hole is repainted from scratch, and an instruction edit is the model's own;
    # a whole-image edit elsewhere keeps the composition by denoising only part of the way.
    whole = edit.mask is None and not spec.instruction_edits
    return _image_to_image(fields, edit, spec.edit_strength if whole else 1.0)


def variation_job(request: ImageVariationForm, edit: EditInput, spec: ModelSpec, loras: LoraLibrary = NO_LORAS) -> Job:
    """Variations: the whole image re-imagined with no prompt, conditioned on the image itself."""
    output = parse_size(request.size, spec) or edit.size
    fields = _resolve(
        "variation", request, spec, output, prompt="", guidance=spec.styles["natural"].guidance, loras=loras
    )
    return _image_to_image(fields, EditInput(image=edit.image, size=edit.size, mask=None), spec.variation_strength)


def edit_needs(edit: EditInput) -> list[Need]:
    """What an edit asks of a model an OpenAI name stands for: references for several images,
    instructions for an edit with nothing marked (what GPT image models do with one)."""
    needs: list[Need] = []
    if edit.references:
        needs.append("references")
    if edit.mask is None:
        needs.append("instructions")
    return needs


def resolve_generation(request: ImageGenerationRequest, served: ServedModels, max_prompt_chars: int) -> Job:
    spec = resolve_model(request.model, served, "generate")
    return generation_job(request, spec, max_prompt_chars, served.loras)


def resolve_edit(request: ImageEditForm, edit: EditInput, served: ServedModels, max_prompt_chars: int) -> Job:
    """The model is picked knowing the images: what an OpenAI name stands for depends on them."""
    spec = resolve_model(request.model, served, "edit", edit_needs(edit))
    check_input_images(spec, 1 + len(edit.references), served)
    return edit_job(request, edit, spec, max_prompt_chars, served.loras)


def resolve_variation(request: ImageVariationForm, edit: EditInput, served: ServedModels) -> Job:
    spec = resolve_model(request.model, served, "variation")
    check_input_images(spec, 1 + len(edit.references), served)
    return variation_job(request, edit, spec, served.loras)
