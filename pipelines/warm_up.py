"""A warm-up: one small real run through a loaded model, before any caller waits for it.

The first pipeline call on a fresh GPU pays for CUDA's lazy start (kernels loaded, cuBLAS and
cuDNN handles made, the allocator's first blocks), and a compiled model for compiling its graphs;
run once while starting, and on Modal inside the memory-snapshot step, the first request finds all
of that done. Edits run through a warm-up too where the model edits, so the editor (built over
the same weights) is made before then.

`warm_up_jobs` is the one recipe: the model cache runs its generation right after torch.compile
(`compile_warm_up`), a host runs all of them through the worker (`warm_up`).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image

from pipelines.contract.catalog import ModelSpec
from pipelines.contract.job import Job, steps_for_strength

if TYPE_CHECKING:  # the worker runs the warm-up; this module only builds its jobs
    from pipelines.families.base import FamilyAdapter
    from pipelines.worker import Worker

log = logging.getLogger("imagegen")


def _gray_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def warm_up_jobs(spec: ModelSpec) -> list[Job]:
    """One generation (if the model generates) and one variation (if it edits), as a first request
    would make them (the default size, the natural style's guidance) but short: two steps, or the
    model's `min_steps` if more (a step cache takes a different path after the first step)."""
    width, height = spec.default_size
    style = spec.styles.get("natural") or next(iter(spec.styles.values()))
    steps = max(2, spec.min_steps)
    base = dict(
        model=spec.id,
        prompt="warm-up",
        n=1,
        width=width,
        height=height,
        output_width=width,
        output_height=height,
        guidance=style.guidance,
        seeds=(0,),
        output_format="jpeg",
    )
    jobs = []
    if "generate" in spec.tasks:
        jobs.append(Job(task="generate", steps=steps, **base))
    if "variation" in spec.tasks or "edit" in spec.tasks:
        strength = spec.variation_strength
        jobs.append(
            Job(
                task="variation",
                steps=steps_for_strength(steps, strength),
                strength=strength,
                images=(_gray_png((width, height)),),
                **base,
            )
        )
    return jobs


def compile_warm_up(family: FamilyAdapter, spec: ModelSpec, pipe: Any) -> Callable[[], Any] | None:
    """The warm-up's generation on a just-loaded pipeline (what optimize.apply runs after compiling),
    or None for a model that only edits (it compiles on first use)."""
    jobs = [job for job in warm_up_jobs(spec) if job.task == "generate"]
    if not jobs:
        return None

    def run() -> Any:
        import torch

        with torch.inference_mode():
            return family.generate(pipe, jobs[0], [torch.Generator("cpu").manual_seed(seed) for seed in jobs[0].seeds])

    return run


def warm_up(worker: Worker, spec: ModelSpec) -> float:
    """Run the warm-up jobs; the seconds they took."""
    began = time.monotonic()
    for job in warm_up_jobs(spec):
        worker.run(job)
    seconds = time.monotonic() - began
    log.info("%s warmed up in %.1f s", spec.id, seconds)
    return seconds
