"""FLUX.1 Kontext: FLUX.1 that takes the image to edit as context and follows the prompt as an
instruction. Its pipeline resizes the output to `max_area` (1024x1024 by default) and the input to
one of its preferred sizes unless told otherwise: both are pinned to the job's render size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from pipelines.contract.job import Job
from pipelines.families.base import Family, StepCallback

if TYPE_CHECKING:
    from pipelines.edit_canvas import EditCanvas
    from pipelines.model_cache import LoadedModel


class KontextFamily(Family):
    def _common(self, job: Job, generators: list[Any], on_step: StepCallback | None,
                batch: list[Job] | None = None) -> dict[str, Any]:
        return {**super()._common(job, generators, on_step, batch), "max_area": job.width * job.height}

    def edit(self, model: LoadedModel, job: Job, canvas: EditCanvas, generators: list[Any],
             on_step: StepCallback | None = None) -> list[Image.Image]:
        """The image (at the render size) is the context; the prompt says what to change."""
        options = self._common(job, generators, on_step)
        return model.pipe(**options, image=canvas.image, _auto_resize=False).images


FLUX_KONTEXT = KontextFamily({}, takes_negative_prompt=False, call_options={"max_sequence_length": 256},
                             packed_latents=True)
