"""FLUX.2 [klein]: step- and guidance-distilled, Qwen3 prompts, no negative prompt; one pipeline
generates and edits, with reference images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from pipelines.contract.job import Job
from pipelines.families.base import Family, StepCallback, decode_small

if TYPE_CHECKING:
    from pipelines.edit_canvas import EditCanvas


class ReferenceFamily(Family):
    """FLUX.2 [klein]: one pipeline generates and edits. An edit's images are what it conditions
    on (the first is the one being edited, the others references), and the prompt is an
    instruction. It has no inpainting pipeline: the canvas keeps the pixels outside the area."""

    def editor(self, base: Any) -> Any:
        """The loaded pipeline itself: it generates and edits."""
        return base

    def edit(
        self,
        editor: Any,
        job: Job,
        canvas: EditCanvas,
        generators: list[Any],
        on_step: StepCallback | None = None,
    ) -> list[Image.Image]:
        options = self._common(job, generators, on_step)
        references = [_conditionable(image) for image in canvas.references]
        return editor(**options, image=[canvas.image, *references]).images

    def preview(self, pipe: Any, latents: Any, job: Job) -> list[Image.Image]:
        """As the pipeline's own final decode: unpack the 2x2 patches, undo the latent batch norm."""
        import torch

        rows, columns = job.height // (pipe.vae_scale_factor * 2), job.width // (pipe.vae_scale_factor * 2)
        latents = latents.reshape(latents.shape[0], rows, columns, latents.shape[-1]).permute(0, 3, 1, 2)
        norm = pipe.vae.bn
        std = torch.sqrt(norm.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps)
        latents = latents * std.to(latents.dtype) + norm.running_mean.view(1, -1, 1, 1).to(latents.dtype)
        return decode_small(pipe, pipe._unpatchify_latents(latents))


# What FLUX.2's image processor takes as a condition image: each side at least 64 px, and an
# aspect of at most 8:1. A reference outside that is resized to fit rather than refused.
_MIN_CONDITION_SIDE = 64
_MAX_CONDITION_ASPECT = 8


def _conditionable(image: Image.Image) -> Image.Image:
    width, height = image.size
    width, height = max(width, height // _MAX_CONDITION_ASPECT), max(height, width // _MAX_CONDITION_ASPECT)
    scale = max(1.0, _MIN_CONDITION_SIDE / min(width, height))
    size = (round(width * scale), round(height * scale))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


FLUX2 = ReferenceFamily("flux2", {}, takes_negative_prompt=False, call_options={})
