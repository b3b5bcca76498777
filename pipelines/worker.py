"""The Worker: runs Jobs on the model cache's pipelines. The only thing that calls torch, and
the same code locally and on Modal's GPUs.

It runs a batch of jobs in one pipeline call, emits previews at their steps, stops when the
callers have gone, and encodes what comes out. Which models are loaded is the cache's business.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines import encoding, imaging
from pipelines.batching import batch_key
from pipelines.contract import errors
from pipelines.contract.job import ImageEvent, Job, Rendered, denoising_steps
from pipelines.contract.matting import DEFAULT_MATTING, MATTING_MODELS
from pipelines.contract.usage import Usage
from pipelines.edit_canvas import EditCanvas
from pipelines.matting.matte import Matting
from pipelines.model_cache import LoadedModel, ModelCache
from pipelines.usage import job_usage

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger("imagegen")

OnPartial = Callable[[ImageEvent], None]
Cancelled = Callable[[], bool]
OnStep = Callable[[int, int], None]  # (denoising steps done, steps in all)


class Stopped(Exception):
    """The callers stopped listening (or their deadline passed); the remaining steps were skipped."""

    def __init__(self, model: str, step: int, steps: int, why: str = "the caller went away") -> None:
        super().__init__(f"stopped {model} after step {step} of {steps}: {why}")


def past_deadline(jobs: list[Job], now: float | None = None) -> bool:
    """Whether nobody waits for any of `jobs` any more: each has a deadline, and all have passed."""
    now = time.time() if now is None else now
    return all(job.deadline is not None and now > job.deadline for job in jobs)


def partial_steps(count: int, steps: int, strength: float = 1.0) -> list[int]:
    """After which denoising steps (1-based) to emit previews: spread evenly, never the last
    step (that is the final image), so fewer than asked when a run has few steps."""
    runs = max(1, denoising_steps(steps, strength))
    chosen = {math.ceil((i + 1) * runs / (count + 1)) for i in range(count)}
    return sorted(step for step in chosen if 1 <= step < runs)


def _is_out_of_memory(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Worker:
    """Runs Jobs on the cache's models. Thread-safe: one run per model at a time (a pipeline's
    scheduler holds per-run state), different models side by side."""

    def __init__(self, models: ModelCache, *, png_parameters: bool = True, matting: Matting | None = None) -> None:
        """`png_parameters`: images say how they were made (prompt, model, seed…): a PNG in a text
        chunk, a JPEG or WebP in its EXIF;
        `matting`: what cuts subjects out for transparent backgrounds (default: the tiny one)."""
        self.models = models
        self.png_parameters = png_parameters
        self.matting = matting or Matting(MATTING_MODELS[DEFAULT_MATTING], models.cache_dir)
        self._run_locks = {model_id: threading.Lock() for model_id in models.specs}
        # Pipeline calls made per model, by how many images each held: what batching shows. Read
        # from the event loop (/metrics) while model threads add to it: under a lock.
        self._batch_sizes: dict[str, Counter[int]] = {model_id: Counter() for model_id in models.specs}
        self._counting = threading.Lock()

    def batch_sizes(self, model_id: str) -> dict[int, int]:
        """Pipeline calls on `model_id` so far, by the images each held."""
        with self._counting:
            return dict(self._batch_sizes[model_id])

    def run(
        self,
        job: Job,
        *,
        on_partial: OnPartial | None = None,
        cancelled: Cancelled | None = None,
        on_step: OnStep | None = None,
    ) -> Rendered:
        """The Job's images, encoded, in seed order, and its usage.

        `on_partial` receives `job.partial_images` previews per image, spread over the run;
        `cancelled` is asked after every step, and a True stops the remaining steps; `on_step`
        hears of every step done.
        """
        return self.run_batch([job], on_partial=on_partial, cancelled=cancelled, on_step=on_step)[0]

    def run_batch(
        self,
        jobs: list[Job],
        *,
        on_partial: OnPartial | None = None,
        cancelled: Cancelled | None = None,
        on_step: OnStep | None = None,
    ) -> list[Rendered]:
        """Several generations in one pipeline call (same model, render size, steps and guidance:
        see `batch_key`), each job's images and usage apart. Edits run one job at a time."""
        return self.encode(jobs, self.render(jobs, on_partial=on_partial, cancelled=cancelled, on_step=on_step))

    def render(
        self,
        jobs: list[Job],
        *,
        on_partial: OnPartial | None = None,
        cancelled: Cancelled | None = None,
        on_step: OnStep | None = None,
    ) -> list[tuple[list[Image], Usage]]:
        """`run_batch`'s pictures (cut out, where the job asks for a transparent background) and
        usage, before encoding: the part that needs the model. A host that encodes elsewhere
        (`encode`) lets the model start its next batch meanwhile."""
        import torch

        lead = jobs[0]
        if len(jobs) > 1 and len({batch_key(job) for job in jobs}) != 1:
            raise ValueError("jobs of one batch must share a batch_key")
        if past_deadline(jobs):  # queued past it (a cold start, a busy container): nobody is waiting
            stopped = Stopped(lead.model, 0, lead.steps, "its deadline passed before it started")
            log.info("%s", stopped)
            raise stopped
        model = self.models.get(lead.model)
        # CPU generators make the same noise on every device: a seed means the same image.
        generators = [torch.Generator("cpu").manual_seed(seed) for job in jobs for seed in job.seeds]
        edit = None if lead.task == "generate" else EditCanvas.of(lead)
        watcher = self._step_watcher(model, lead, edit, on_partial, self._stop_when(jobs, cancelled), on_step)
        with self._run_locks[lead.model]:
            with self._counting:
                self._batch_sizes[lead.model][sum(job.n for job in jobs)] += 1
            try:
                # Outside inference mode: adapter weights loaded in it are inference tensors,
                # which PEFT cannot touch again when the next adapter loads.
                model.use_loras(lead.loras)
                with torch.inference_mode():
                    if edit is None:
                        batch = jobs if len(jobs) > 1 else None
                        images = model.family.generate(model.pipe, lead, generators, watcher, batch)
                    else:
                        images = model.family.edit(model.editor(), lead, edit, generators, watcher)
            except Stopped as stopped:
                log.info("%s", stopped)
                raise
            except Exception as exc:
                self.models.free_memory()
                if _is_out_of_memory(exc):
                    raise errors.out_of_memory(lead.model) from None
                raise
        results, start = [], 0
        for job in jobs:
            own, start = images[start : start + job.n], start + job.n
            if edit is None:
                own = [imaging.resized(image, (job.output_width, job.output_height)) for image in own]
            else:
                own = [edit.keep_outside(image) for image in own]
            if job.background == "transparent":  # all of the job's images in one call, on the generator's device
                own = self.matting.cut_out(own, self.models.device)
            results.append((own, job_usage(model.pipe, model.family, job)))
        return results

    def encode(self, jobs: list[Job], rendered: list[tuple[list[Image], Usage]]) -> list[Rendered]:
        """Each job's pictures in its output format, all images of the batch at once, with its usage."""
        work = [
            (image, job.output_format, job.output_compression, self._parameters(job, seed))
            for job, (own, _) in zip(jobs, rendered, strict=True)
            for image, seed in zip(own, job.seeds, strict=True)
        ]
        encoded = iter(encoding.encode_all(work))
        return [Rendered([next(encoded) for _ in own], usage) for own, usage in rendered]

    def _parameters(self, job: Job, seed: int) -> str | None:
        """How an image was made, in A1111's `parameters` layout."""
        if not self.png_parameters:
            return None
        lines = [job.prompt]
        if job.negative_prompt:
            lines.append(f"Negative prompt: {job.negative_prompt}")
        settings = {
            "Steps": job.steps,
            "CFG scale": job.guidance,
            "Seed": seed,
            "Size": f"{job.output_width}x{job.output_height}",
            "Model": job.model,
            "Task": job.task,
        }
        if job.task != "generate":
            settings["Denoising strength"] = job.strength
        if job.loras:
            settings["LoRA"] = " ".join(f"{lora.name}:{lora.scale:g}" for lora in job.loras)
        lines.append(", ".join(f"{key}: {value}" for key, value in settings.items()))
        return "\n".join(lines)

    @staticmethod
    def _stop_when(jobs: list[Job], cancelled: Cancelled | None) -> Cancelled | None:
        """Asked after every step: the callers have gone, or the jobs' deadline has passed."""
        if all(job.deadline is None for job in jobs):
            return cancelled
        return lambda: (cancelled is not None and cancelled()) or past_deadline(jobs)

    def _step_watcher(
        self,
        model: LoadedModel,
        job: Job,
        edit: EditCanvas | None,
        on_partial: OnPartial | None,
        cancelled: Cancelled | None,
        on_step: OnStep | None = None,
    ) -> Callable[[int, Any], None] | None:
        """The per-step callback: stop when cancelled, tell `on_step`, emit previews at their steps."""
        preview_steps = partial_steps(job.partial_images, job.steps, job.strength) if on_partial else []
        if not preview_steps and cancelled is None and on_step is None:
            return None
        runs = max(1, denoising_steps(job.steps, job.strength))

        def watch(step: int, latents: Any) -> None:
            if cancelled is not None and cancelled():
                raise Stopped(job.model, step + 1, job.steps)
            if on_step is not None:
                on_step(step + 1, runs)
            if on_partial is None or step + 1 not in preview_steps:
                return
            previews = model.family.preview(model.pipe, latents, job)  # the editors share its VAE
            for index, preview in enumerate(previews):
                if edit is not None:
                    preview = edit.keep_outside(preview, preview.size)
                data = encoding.encode(preview, job.output_format, job.output_compression)
                on_partial(ImageEvent("partial", index, data, partial_index=preview_steps.index(step + 1)))

        return watch
