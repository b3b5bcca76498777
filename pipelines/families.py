"""The one place that knows each model family's quirks in diffusers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pipelines.contract.catalog import FamilyName
from pipelines.contract.job import Job

# Called after each denoising step with the step's latents (diffusers' callback_on_step_end).
StepCallback = Callable[[int, Any], None]


@dataclass(frozen=True)
class Family:
    """How to load and call one family's pipelines."""

    load_options: dict[str, Any]
    takes_negative_prompt: bool
    call_options: dict[str, Any]
    # Flux packs 2x2 latent patches into a sequence; they must be unpacked before decoding.
    packed_latents: bool = False

    def load(self, source: str, revision: str | None, dtype: Any, device: str) -> Any:
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # Progress bars are for notebooks; in a server log they are noise per load.
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        pipe = DiffusionPipeline.from_pretrained(source, revision=revision, dtype=dtype, **self.load_options)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)

    def editor(self, base: Any) -> Any:
        """An inpainting pipeline over the loaded weights: no second load.

        It gets its own scheduler, because a scheduler holds per-run state and from_pipe
        would otherwise share the base pipeline's.
        """
        from diffusers import AutoPipelineForInpainting

        if type(base).__name__.endswith("InpaintPipeline"):
            return base
        scheduler = type(base.scheduler).from_config(base.scheduler.config)
        editor = AutoPipelineForInpainting.from_pipe(base, scheduler=scheduler)
        editor.set_progress_bar_config(disable=True)
        return editor

    def _common(
        self, job: Job, generators: list[Any], on_step: StepCallback | None, batch: list[Job] | None = None
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "prompt": job.prompt,
            "num_inference_steps": job.steps,
            "guidance_scale": job.guidance,
            "height": job.height,
            "width": job.width,
            "num_images_per_prompt": job.n,
            "generator": generators,
            "output_type": "pil",
            **self.call_options,
        }
        if self.takes_negative_prompt and job.negative_prompt:
            options["negative_prompt"] = job.negative_prompt
        if batch:  # several jobs in one call: a prompt per image, in job order
            options["prompt"] = [each.prompt for each in batch for _ in range(each.n)]
            options["num_images_per_prompt"] = 1
            if self.takes_negative_prompt and any(each.negative_prompt for each in batch):
                options["negative_prompt"] = [each.negative_prompt or "" for each in batch for _ in range(each.n)]
        if on_step is not None:

            def callback(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                on_step(step, tensors["latents"])
                return tensors

            options["callback_on_step_end"] = callback
            options["callback_on_step_end_tensor_inputs"] = ["latents"]
        return options

    def text_to_image(
        self,
        pipe: Any,
        job: Job,
        generators: list[Any],
        on_step: StepCallback | None = None,
        batch: list[Job] | None = None,
    ) -> list[Image.Image]:
        """`job`'s images; with `batch`, the images of every job in it (same size, steps, guidance)."""
        return pipe(**self._common(job, generators, on_step, batch)).images

    def inpaint(
        self,
        pipe: Any,
        job: Job,
        image: Image.Image,
        area: Image.Image,
        generators: list[Any],
        on_step: StepCallback | None = None,
    ) -> list[Image.Image]:
        """Repaint `area` (white) of `image`; both already at the render size."""
        options = self._common(job, generators, on_step)
        return pipe(**options, image=image, mask_image=area, strength=job.strength).images

    def preview(self, pipe: Any, latents: Any, job: Job) -> list[Image.Image]:
        """Cheap previews of in-progress latents: decoded at half size where that still has detail."""
        import torch.nn.functional as F

        if self.packed_latents:
            latents = pipe._unpack_latents(latents, job.height, job.width, pipe.vae_scale_factor)
        if min(latents.shape[-2:]) >= 16:  # a half-size decode costs about a quarter
            latents = F.interpolate(latents, scale_factor=0.5, mode="bilinear")
        config = pipe.vae.config
        latents = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        decoded = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]
        return pipe.image_processor.postprocess(decoded.float(), output_type="pil")


# Loaded without the safety checker: it needs separate weights from the hub, and the
# catalog's models do not ship it.
_NO_SAFETY_CHECKER = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}

FAMILIES: dict[FamilyName, Family] = {
    "sd": Family(_NO_SAFETY_CHECKER, takes_negative_prompt=True, call_options={}),
    "sdxl": Family({}, takes_negative_prompt=True, call_options={}),
    # Flux: no negative prompt (guidance is distilled); schnell's T5 context is 256 tokens.
    "flux": Family(
        {}, takes_negative_prompt=False, call_options={"max_sequence_length": 256}, packed_latents=True
    ),
}
