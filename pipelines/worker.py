"""The Worker: the only thing that touches torch. The same code runs locally and on Modal's GPUs."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from handlers.errors import APIError
from handlers.job import Job
from pipelines import imaging
from pipelines.catalog import ModelSpec
from pipelines.devices import pick_device, pick_dtype
from pipelines.families import FAMILIES, Family
from pipelines.weights import weights_source

log = logging.getLogger("imagegen")

# One load at a time in the whole process: diffusers' lazy imports and accelerate's
# meta-device loading are not thread-safe (two models loading at once fail with "cannot
# import name" or "Cannot copy out of meta tensor").
_LOADING = threading.RLock()


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

    def __init__(self, specs: Iterable[ModelSpec], *, cache_dir: Path, device: str = "auto", max_loaded: int = 3) -> None:
        self.specs = {spec.id: spec for spec in specs}
        self.cache_dir = Path(cache_dir)
        self.device = pick_device(device)
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

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
            pipe = family.load(source, revision, pick_dtype(self.device), self.device)
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

    def run(self, job: Job) -> list[bytes]:
        """The Job's images, encoded, in seed order."""
        import torch

        model = self.load(job.model)
        # CPU generators make the same noise on every device: a seed means the same image.
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in job.seeds]
        output_size = (job.output_width, job.output_height)
        with torch.inference_mode():
            if job.task == "generate":
                images = model.family.text_to_image(model.pipe, job, generators)
                images = [imaging.resized(image, output_size) for image in images]
            elif job.task == "edit":
                images = self._edit(model, job, generators)
            else:
                raise APIError(400, f"Task {job.task} is not supported yet.", param="task", code="unsupported_task")
        return [imaging.encode(image, job.output_format, job.output_compression) for image in images]

    def _edit(self, model: LoadedModel, job: Job, generators: list[Any]) -> list[Image.Image]:
        output_size = (job.output_width, job.output_height)
        render_size = (job.width, job.height)
        original = imaging.decode(job.images[0])
        original = original.convert("RGBA" if imaging.has_alpha(original) else "RGB")
        original = imaging.resized(original, output_size)
        if job.mask is None:
            area = Image.new("L", output_size, 255)
        else:
            area = imaging.resized(imaging.decode(job.mask).convert("L"), output_size, exact=True)
        generated = model.family.inpaint(
            model.editor(),
            job,
            imaging.resized(original.convert("RGB"), render_size),
            imaging.resized(area, render_size, exact=True),
            generators,
        )
        return [imaging.keep_outside(original, image, area) for image in generated]

    def _free_memory(self) -> None:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
