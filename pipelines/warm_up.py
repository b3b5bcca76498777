"""A warm-up: one small real run through a loaded model, before any caller waits for it.

The first pipeline call on a fresh GPU pays for CUDA's lazy start (kernels loaded, cuBLAS and
cuDNN handles made, the allocator's first blocks); run once while starting, and on Modal inside
the memory-snapshot step, the first request finds all of that done. Edits run through a warm-up
too where the model edits, so the editor (built over the same weights) is made before then.
"""

from __future__ import annotations

import io
import logging
import time

from PIL import Image

from pipelines.contract.catalog import ModelSpec
from pipelines.contract.job import Job, steps_for_strength
from pipelines.worker import Worker

log = logging.getLogger("imagegen")


def _gray_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def warm_up_jobs(spec: ModelSpec) -> list[Job]:
    """One generation (if the model generates) and one variation (if it edits), as few steps as
    the model takes (one, or its `min_steps`), at its default size."""
    width, height = spec.default_size
    base = dict(model=spec.id, prompt="warm-up", n=1, width=width, height=height, output_width=width,
                output_height=height, guidance=0.0, seeds=(0,), output_format="jpeg")
    jobs = []
    if "generate" in spec.tasks:
        jobs.append(Job(task="generate", steps=spec.min_steps, **base))
    if "variation" in spec.tasks or "edit" in spec.tasks:
        strength = spec.variation_strength
        jobs.append(Job(task="variation", steps=steps_for_strength(spec.min_steps, strength), strength=strength,
                        images=(_gray_png((width, height)),), **base))
    return jobs


def warm_up(worker: Worker, spec: ModelSpec) -> float:
    """Run the warm-up jobs; the seconds they took."""
    began = time.monotonic()
    for job in warm_up_jobs(spec):
        worker.run(job)
    seconds = time.monotonic() - began
    log.info("%s warmed up in %.1f s", spec.id, seconds)
    return seconds
