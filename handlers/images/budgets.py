"""How much work one request may cause, checked before the work: decoding its uploads, making its images.

Decoding is the expensive part of an upload: a 100 KB PNG can declare a 6000x6000 bitmap. So
the count of images is checked against the model first (by its name alone: the served models'
bounds are known here), and the pixels every image and the mask declare in their headers are
added up against one budget for the request, before any of them is decoded. What the request
makes (its output's pixels times n) has a budget too: an edit's output is its input's size, so
a small upload could otherwise ask for a response of hundreds of megabytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from PIL import Image

from pipelines.contract.catalog import ModelSpec, Task
from pipelines.contract.errors import invalid
from pipelines.contract.job import Job
from pipelines.contract.served import Need, ServedModels


def check_input_images(spec: ModelSpec, count: int, served: ServedModels) -> None:
    """At most the model's own bound, and a 400 that says which served models take more."""
    if count <= spec.max_input_images:
        return
    takers = [f"{each.id} (up to {each.max_input_images})" for each in served.having("references")]
    where = (
        f"Models here that take several: {', '.join(takers)}."
        if takers
        else "No model served here takes several; serve one that does (see `imagegen models`)."
    )
    limit = spec.max_input_images
    raise invalid(
        "image",
        f"Model {spec.id} takes at most {limit} input image{'s' if limit > 1 else ''}; {count} were sent. {where}",
        code="too_many_images",
    )


def check_count_by_name(name: str | None, count: int, served: ServedModels, task: Task) -> None:
    """The image count against every model `name` may stand for once the images are read (what an
    OpenAI name picks depends on them): a 400 only when none of them takes `count`."""
    if count <= 1:
        return
    picks: list[list[Need]] = [["references"], ["references", "instructions"]]
    candidates = [spec for needs in picks if (spec := served.get(name, needs, task)) is not None]
    if candidates and all(count > spec.max_input_images for spec in candidates):
        check_input_images(candidates[0], count, served)


def declared_pixels(data: bytes) -> int:
    """The pixels an image's header declares (0 for what is not an image: its decode says so)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # unreadable, or Pillow's bomb guard: the decode gives the precise 400
        return 0


def check_decode_budget(files: Iterable[bytes], max_pixels: int) -> None:
    """All the request's images and its mask together decode to at most `max_pixels`."""
    total = sum(declared_pixels(data) for data in files)
    if total > max_pixels:
        raise invalid(
            "image",
            f"The uploaded images declare {total:,} pixels in all; a request may decode at most {max_pixels:,}.",
            code="image_too_large",
        )


def check_output_budget(job: Job, max_pixels: int) -> None:
    """The images a job makes, width x height x n, at most `max_pixels`."""
    total = job.output_width * job.output_height * job.n
    if total > max_pixels:
        raise invalid(
            "size",
            f"{job.n} image{'s' if job.n > 1 else ''} of {job.output_width}x{job.output_height} "
            f"({total:,} pixels) is more than a request may make ({max_pixels:,}); ask for a smaller `size` or "
            "fewer images.",
            code="output_too_large",
        )
