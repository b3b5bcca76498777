"""What every family shares: the protocol the model cache and the worker call a family through,
and `Family`, the diffusers implementation of it: loading (a folder or a single file), the call's
common options, an inpainting editor over the loaded weights, and previews of in-progress latents.
Each family's own quirks are in its folder beside this module.

A family is handed the pipelines it runs (the base one, or the editor it made over it): it never
reaches into the cache or the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from pipelines.contract.families import FAMILY_FACTS
from pipelines.contract.job import Job

if TYPE_CHECKING:
    from pipelines.edit_canvas import EditCanvas

# Called after each denoising step with the step's latents (diffusers' callback_on_step_end).
StepCallback = Callable[[int, Any], None]


class FamilyAdapter(Protocol):
    """What the model cache and the worker ask of a family. Not every family need be a diffusers
    text-to-image pipeline: one that is loaded otherwise (a segmentation model, say) implements
    these over what its `load` returns."""

    name: str

    def load(self, source: str, variant: str | None, dtype: Any, device: str, config: str | None = None) -> Any:
        """The loaded model (its "pipeline") from `source`, on `device` in `dtype`."""
        ...

    def editor(self, base: Any) -> Any:
        """What `edit` runs on, made over the loaded `base` (which it may be)."""
        ...

    def generate(
        self,
        pipe: Any,
        job: Job,
        generators: list[Any],
        on_step: StepCallback | None = None,
        batch: list[Job] | None = None,
    ) -> list[Image.Image]:
        """The job's images (with `batch`, the images of every job in it)."""
        ...

    def edit(
        self, editor: Any, job: Job, canvas: EditCanvas, generators: list[Any], on_step: StepCallback | None = None
    ) -> list[Image.Image]:
        """The job's edited images, run on `editor(base)`."""
        ...

    def preview(self, pipe: Any, latents: Any, job: Job) -> list[Image.Image]:
        """Previews of a step's in-progress latents."""
        ...


@dataclass(frozen=True)
class Family:
    """How to load and call one family's diffusers pipelines."""

    name: str  # its name in the contract's family facts
    load_options: dict[str, Any]
    takes_negative_prompt: bool
    call_options: dict[str, Any]
    # Flux packs 2x2 latent patches into a sequence; they must be unpacked before decoding.
    packed_latents: bool = False

    @property
    def single_file_pipeline(self) -> str | None:
        """The pipeline that reads this family's single-file checkpoints (A1111/ComfyUI layouts)."""
        return FAMILY_FACTS[self.name].single_file_pipeline

    def load(self, source: str, variant: str | None, dtype: Any, device: str, config: str | None = None) -> Any:
        """The pipeline from a diffusers folder, or from a single-file checkpoint with `config`
        (a diffusers folder of the same family: its configs, tokenizers and any component the file
        lacks, such as FLUX.1's text encoders)."""
        import diffusers
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # Progress bars are for notebooks; in a server log they are noise per load. And the
        # libraries' own stderr handlers would bypass the process's log format (JSON, say):
        # their records go through the root logger like everyone else's.
        for library in (diffusers_logging, transformers_logging):
            library.disable_progress_bar()
            library.disable_default_handler()
            library.enable_propagation()
        if config is not None and self.single_file_pipeline is not None:
            pipeline_class = getattr(diffusers, self.single_file_pipeline)
            pipe = pipeline_class.from_single_file(
                source, config=config, torch_dtype=dtype, local_files_only=True, **self.load_options
            )
        else:
            pipe = DiffusionPipeline.from_pretrained(source, variant=variant, dtype=dtype, **self.load_options)
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
            **self.guidance(job),
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

    def generate(
        self,
        pipe: Any,
        job: Job,
        generators: list[Any],
        on_step: StepCallback | None = None,
        batch: list[Job] | None = None,
    ) -> list[Image.Image]:
        """`job`'s images; with `batch`, the images of every job in it (same size, steps, guidance)."""
        return pipe(**self._common(job, generators, on_step, batch)).images

    def edit(
        self,
        editor: Any,
        job: Job,
        canvas: EditCanvas,
        generators: list[Any],
        on_step: StepCallback | None = None,
    ) -> list[Image.Image]:
        """Repaint the canvas's area (white) of its image, at the render size, with the inpainting
        pipeline `editor(base)` made over the loaded weights."""
        options = self._common(job, generators, on_step)
        return editor(**options, image=canvas.image, mask_image=canvas.area, strength=job.strength).images

    def guidance(self, job: Job) -> dict[str, Any]:
        """How the job's guidance reaches the pipeline (most take `guidance_scale`)."""
        return {"guidance_scale": job.guidance}

    def vae_latents(self, pipe: Any, latents: Any, height: int, width: int) -> Any:
        """A step's latents as the VAE decodes them: unpacked, unscaled, unshifted (the pipeline's
        own final decode does the same)."""
        if self.packed_latents:
            latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
        config = pipe.vae.config
        return latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)

    def preview(self, pipe: Any, latents: Any, job: Job) -> list[Image.Image]:
        """Cheap previews of in-progress latents: decoded at half size where that still has detail."""
        return decode_small(pipe, self.vae_latents(pipe, latents, job.height, job.width))


def decode_small(pipe: Any, latents: Any) -> list[Image.Image]:
    """VAE latents as images, at half size where that still has detail (a quarter of the cost)."""
    import torch.nn.functional as F

    if min(latents.shape[-2:]) >= 16:
        latents = F.interpolate(latents, scale_factor=0.5, mode="bilinear")
    decoded = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded.float(), output_type="pil")
