"""An edit's pixels: the original at the output size, the area to repaint, and the copies the
pipeline renders from. Everything outside the area comes back byte-identical."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from pipelines import imaging
from pipelines.contract import pictures
from pipelines.contract.job import Job


@dataclass(frozen=True)
class EditCanvas:
    """An edit's original (at the output size) and area, and their render-size copies."""

    original: Image.Image
    area: Image.Image  # at render size, white = repaint
    output_area: Image.Image
    image: Image.Image  # the original at render size, RGB, for the pipeline
    references: tuple[Image.Image, ...] = ()  # the other images, RGB, as sent (a model that uses them sizes them)

    @classmethod
    def of(cls, job: Job) -> EditCanvas:
        output_size, render_size = (job.output_width, job.output_height), (job.width, job.height)
        original = pictures.decode(job.images[0])
        original = original.convert("RGBA" if pictures.has_transparency(original) else "RGB")
        original = imaging.resized(original, output_size)
        if job.mask is None:
            area = Image.new("L", output_size, 255)
        else:
            area = imaging.resized(pictures.decode(job.mask).convert("L"), output_size, exact=True)
        return cls(
            original=original,
            area=imaging.resized(area, render_size, exact=True),
            output_area=area,
            image=imaging.resized(original.convert("RGB"), render_size),
            references=tuple(pictures.decode(data).convert("RGB") for data in job.images[1:]),
        )

    def keep_outside(self, generated: Image.Image, size: tuple[int, int] | None = None) -> Image.Image:
        """`generated` inside the area, the original outside it (at `size`, default the output's)."""
        if size is None:
            return imaging.keep_outside(self.original, generated, self.output_area)
        original = imaging.resized(self.original, size)
        return imaging.keep_outside(original, generated, imaging.resized(self.output_area, size, exact=True))
