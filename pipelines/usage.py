"""A Job's token usage, counted with the loaded model's own tokenizer and latent geometry."""

from __future__ import annotations

from typing import Any

from pipelines.contract import pictures
from pipelines.contract.families import FAMILY_FACTS
from pipelines.contract.job import Job
from pipelines.contract.usage import Usage, latent_patches


def prompt_tokenizer(pipe: Any) -> Any | None:
    """The tokenizer of the text encoder that reads the most of a prompt (T5 beside CLIP on FLUX.1
    and SD3; the only one elsewhere); None for a pipeline without one."""
    tokenizers = [
        value for name, value in pipe.components.items() if name.startswith("tokenizer") and value is not None
    ]
    return max(tokenizers, key=lambda tokenizer: tokenizer.model_max_length, default=None)


def text_tokens(tokenizer: Any, text: str | None) -> int:
    """The text's tokens, untruncated and without the special tokens a pipeline adds around it."""
    if not text or tokenizer is None:
        return 0
    return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


def job_usage(pipe: Any, family: Any, job: Job) -> Usage:
    """Text tokens of the prompt and the negative prompt (where the family uses one); the latent
    patches of the input images (the first at the render size, references as sent) and of the
    images made."""
    patch = getattr(pipe, "vae_scale_factor", 8) * FAMILY_FACTS[family.name].latent_patch
    tokenizer = prompt_tokenizer(pipe)
    text = text_tokens(tokenizer, job.prompt)
    if family.takes_negative_prompt:
        text += text_tokens(tokenizer, job.negative_prompt)
    image = 0
    for index, data in enumerate(job.images):
        width, height = (job.width, job.height) if index == 0 else pictures.decode(data).size
        image += latent_patches(width, height, patch)
    return Usage(
        text_tokens=text, image_tokens=image, output_tokens=job.n * latent_patches(job.width, job.height, patch)
    )
