"""FLUX.1 Kontext: FLUX.1 that takes the image to edit as context and follows the prompt as an
instruction. Its pipeline resizes the output to `max_area` (1024x1024 by default) and the input to
one of its preferred sizes unless told otherwise: both are pinned to the job's render size.

Facts the host needs (read from diffusers 0.42.1's `pipeline_flux_kontext.py`):
- `pipe.vae_scale_factor` is 8; latents are packed 2x2, so sizes are multiples of 16.
- The pipeline does NOT honour height/width as given: it keeps their aspect ratio but rescales
  them to `max_area` (default 1024**2) and floors to 16. Pass `max_area=height * width` to get
  the asked size (it still floors to 16).
- The input image is resized to the nearest of Kontext's preferred ~1MP resolutions unless
  `_auto_resize=False` (then it is only floored to multiples of 16); either way it is VAE-encoded
  at that size, so an edit of a large image is costlier than a generation.
- Guidance: `guidance_scale` (default 3.5) is the distilled guidance fed to the transformer;
  real CFG is `true_cfg_scale` (default 1.0, off) together with `negative_prompt`.
- Step-callback `latents` are packed, shape (B, (H/16)*(W/16), 64); the family's preview unpacks them
  and decodes `latents / scaling_factor + shift_factor`, exactly as the pipeline's final decode.
  Height and width there are the adjusted ones (the output image's size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from pipelines.contract.job import Job
from pipelines.families.base import Family, StepCallback

if TYPE_CHECKING:
    from pipelines.edit_canvas import EditCanvas


class KontextFamily(Family):
    def _common(
        self, job: Job, generators: list[Any], on_step: StepCallback | None, batch: list[Job] | None = None
    ) -> dict[str, Any]:
        return {**super()._common(job, generators, on_step, batch), "max_area": job.width * job.height}

    def editor(self, base: Any) -> Any:
        """The loaded pipeline itself: it takes the image to edit as context."""
        return base

    def edit(
        self, editor: Any, job: Job, canvas: EditCanvas, generators: list[Any], on_step: StepCallback | None = None
    ) -> list[Image.Image]:
        """The image (at the render size) is the context; the prompt says what to change."""
        options = self._common(job, generators, on_step)
        return editor(**options, image=canvas.image, _auto_resize=False).images


FLUX_KONTEXT = KontextFamily(
    "flux-kontext", {}, takes_negative_prompt=False, call_options={"max_sequence_length": 256}, packed_latents=True
)
