"""The Worker: the only thing that touches torch. The same code runs locally and on Modal's GPUs."""

from __future__ import annotations

import gc
import logging
import math
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.errors import APIError
from handlers.job import ImageEvent, Job
from pipelines import imaging
from pipelines.catalog import ModelSpec
from pipelines.devices import pick_device, pick_dtype
from pipelines.edit_canvas import EditCanvas
from pipelines.families import FAMILIES, Family
from pipelines.weights import weights_source

log = logging.getLogger("imagegen")

# One load at a time in the whole process: diffusers' lazy imports and accelerate's
# meta-device loading are not thread-safe (two models loading at once fail with "cannot
# import name" or "Cannot copy out of meta tensor").
_LOADING = threading.RLock()


class Cancelled(Exception):
    """The caller stopped listening; the remaining steps were skipped."""

    def __init__(self, model: str, step: int, steps: int) -> None:
        super().__init__(f"stopped {model} after step {step} of {steps}: the caller went away")


def partial_steps(count: int, steps: int, strength: float = 1.0) -> list[int]:
    """After which denoising steps (1-based) to emit previews: spread evenly, never the last
    step (that is the final image), so fewer than asked when a run has few steps."""
    runs = max(1, math.floor(steps * strength)) if strength < 1.0 else steps
    chosen = {math.ceil((i + 1) * runs / (count + 1)) for i in range(count)}
    return sorted(step for step in chosen if 1 <= step < runs)


def batch_key(job: Job) -> tuple[Any, ...] | None:
    """Jobs with equal keys can share one pipeline call; None: this job runs alone."""
    if job.task != "generate" or job.partial_images:
        return None
    return (job.model, job.width, job.height, job.steps, job.guidance)


def _out_of_memory(exc: Exception, job: Job) -> Exception:
    """Out of device memory is the load's fault, not the request's: a 503 worth retrying.
    Anything else goes up unchanged (the engine reports it as a 500)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return APIError(
            503,
            f"Model {job.model} ran out of device memory for this request; retry, or ask for fewer or smaller images.",
            code="out_of_memory",
            retryable=True,
            headers={"retry-after": "5"},
        )
    return exc


@dataclass
class LoadedModel:
    """A model in memory: its base pipeline and, made on first edit, an editor over its weights."""

    spec: ModelSpec
    family: Family
    pipe: Any
    _editor: Any = field(default=None, repr=False)

    def editor(self) -> Any:
        if self._editor is None:
            with _LOADING:
                self._editor = self.family.editor(self.pipe)
        return self._editor


class Worker:
    """Keeps pipelines warm (loaded once, least recently used evicted) and runs Jobs on them.

    Thread-safe for different models; callers run one Job per model at a time (a pipeline's
    scheduler holds per-run state).
    """

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        cache_dir: Path,
        device: str = "auto",
        max_loaded: int = 3,
        dtype: str | None = None,
    ) -> None:
        """`dtype` ("bfloat16", "float16", "float32") overrides the device's usual one: loading on
        the CPU in the dtype the GPU will use halves the memory a Modal snapshot holds."""
        self.specs = {spec.id: spec for spec in specs}
        self.cache_dir = Path(cache_dir)
        self.device = pick_device(device)
        self.dtype = dtype
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._run_locks = {model_id: threading.Lock() for model_id in self.specs}

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def load(self, model_id: str) -> LoadedModel:
        """The model, loading it if needed. A failed load raises and is retried next time."""
        if model_id not in self.specs:
            raise APIError(404, f"The model '{model_id}' is not served here.", param="model", code="model_not_found")
        with self._lock:
            if model_id in self._loaded:
                self._loaded.move_to_end(model_id)
                return self._loaded[model_id]
        with _LOADING:
            with self._lock:  # loaded while we waited for our turn?
                if model_id in self._loaded:
                    return self._loaded[model_id]
            model = self._load_now(self.specs[model_id])
            with self._lock:
                self._loaded[model_id] = model
                while len(self._loaded) > self.max_loaded:
                    evicted, _ = self._loaded.popitem(last=False)
                    log.info("evicted %s (more than %d models loaded)", evicted, self.max_loaded)
            self._free_memory()
            return model

    def _load_now(self, spec: ModelSpec) -> LoadedModel:
        family = FAMILIES[spec.family]
        try:
            source, revision = weights_source(spec, self.cache_dir)
            log.info("loading %s from %s on %s", spec.id, source, self.device)
            pipe = family.load(source, revision, self._dtype(), self.device)
        except Exception as exc:
            log.exception("loading %s failed", spec.id)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise APIError(
                500,
                f"Model {spec.id} could not be loaded: {reason[:300]}",
                code="model_load_failed",
                retryable=False,
            ) from None
        return LoadedModel(spec=spec, family=family, pipe=pipe)

    def run(
        self,
        job: Job,
        *,
        on_partial: Callable[[ImageEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[bytes]:
        """The Job's images, encoded, in seed order.

        `on_partial` receives `job.partial_images` previews per image, spread over the run;
        `cancelled` is asked after every step, and a True stops the remaining steps.
        """
        return self.run_batch([job], on_partial=on_partial, cancelled=cancelled)[0]

    def run_batch(
        self,
        jobs: list[Job],
        *,
        on_partial: Callable[[ImageEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[list[bytes]]:
        """Several generations in one pipeline call (same model, render size, steps and guidance:
        see `batch_key`), each job's images in its own list. Edits run one job at a time."""
        import torch

        lead = jobs[0]
        if len(jobs) > 1 and len({batch_key(job) for job in jobs}) != 1:
            raise ValueError("jobs of one batch must share a batch_key")
        model = self.load(lead.model)
        # CPU generators make the same noise on every device: a seed means the same image.
        generators = [torch.Generator("cpu").manual_seed(seed) for job in jobs for seed in job.seeds]
        edit = None if lead.task == "generate" else EditCanvas.of(lead)
        on_step = self._step_watcher(model, lead, edit, on_partial, cancelled)
        # A pipeline's scheduler holds per-run state: one run per model at a time, whoever calls.
        with self._run_locks[lead.model], torch.inference_mode():
            try:
                if edit is None:
                    batch = jobs if len(jobs) > 1 else None
                    images = model.family.text_to_image(model.pipe, lead, generators, on_step, batch)
                else:
                    images = model.family.inpaint(model.editor(), lead, edit.image, edit.area, generators, on_step)
            except Cancelled as stopped:
                log.info("%s", stopped)
                raise
            except Exception as exc:
                self._free_memory()
                fault = _out_of_memory(exc, lead)
                if fault is exc:
                    raise
                raise fault from None
        results, start = [], 0
        for job in jobs:
            own, start = images[start : start + job.n], start + job.n
            if edit is None:
                own = [imaging.resized(image, (job.output_width, job.output_height)) for image in own]
            else:
                own = [edit.keep_outside(image) for image in own]
            results.append([imaging.encode(image, job.output_format, job.output_compression) for image in own])
        return results

    def stream(self, job: Job) -> Iterator[ImageEvent]:
        """The Job as events: previews as they are made, then each completed image.

        For callers that want a plain generator (Modal's generator method). Closing it early
        stops the remaining steps.
        """
        events: queue.Queue[ImageEvent | BaseException | None] = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for index, data in enumerate(self.run(job, on_partial=events.put, cancelled=stop.is_set)):
                    events.put(ImageEvent(kind="completed", image_index=index, data=data))
                events.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                events.put(exc)

        threading.Thread(target=produce, name=f"imagegen-stream-{job.model}", daemon=True).start()
        try:
            while (event := events.get()) is not None:
                if isinstance(event, BaseException):
                    raise event
                yield event
        finally:
            stop.set()

    def _step_watcher(
        self,
        model: LoadedModel,
        job: Job,
        edit: EditCanvas | None,
        on_partial: Callable[[ImageEvent], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> Callable[[int, Any], None] | None:
        """The per-step callback: stop when cancelled, emit previews at their steps."""
        preview_steps = partial_steps(job.partial_images, job.steps, job.strength) if on_partial else []
        if not preview_steps and cancelled is None:
            return None

        def on_step(step: int, latents: Any) -> None:
            if cancelled is not None and cancelled():
                raise Cancelled(job.model, step + 1, job.steps)
            if on_partial is None or step + 1 not in preview_steps:
                return
            previews = model.family.preview(model.editor() if edit else model.pipe, latents, job)
            for index, preview in enumerate(previews):
                if edit is not None:
                    preview = edit.keep_outside(preview, preview.size)
                data = imaging.encode(preview, job.output_format, job.output_compression)
                on_partial(ImageEvent("partial", index, data, partial_index=preview_steps.index(step + 1)))

        return on_step

    def move_to(self, device: str) -> None:
        """Move the loaded pipelines (and later loads) to `device`, e.g. once a GPU is attached."""
        with _LOADING, self._lock:
            self.device = device
            for model in self._loaded.values():
                model.pipe.to(device=device, dtype=self._dtype())  # editors share these modules

    def _dtype(self) -> Any:
        if self.dtype is None:
            return pick_dtype(self.device)
        import torch

        return getattr(torch, self.dtype)

    def _free_memory(self) -> None:
        gc.collect()
        # Ask CUDA only when we run on it: torch caches its first answer, and an early "no GPU"
        # (say, while a Modal memory snapshot is taken) would stick after the GPU arrives.
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
