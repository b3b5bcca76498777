"""The model cache: pipelines loaded once, kept warm, the least recently used evicted.

It owns what a loaded model costs: which device and dtype it lives on, moving it when a GPU
arrives (a Modal snapshot restore), and giving memory back after a load or a failure.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import optimize, third_party_logs
from pipelines.adapters import Adapters
from pipelines.contract import errors
from pipelines.contract.catalog import ModelSpec
from pipelines.contract.job import LoraUse
from pipelines.contract.status import ModelState
from pipelines.devices import pick_device, pick_dtype
from pipelines.families import FAMILIES, FamilyAdapter
from pipelines.threads import use_threads
from pipelines.warm_up import compile_warm_up
from pipelines.weights import WeightsAbsent, is_present, single_file_config, weights_source

log = logging.getLogger("imagegen")

# One load at a time in the whole process: diffusers' lazy imports and accelerate's
# meta-device loading are not thread-safe (two models loading at once fail with "cannot
# import name" or "Cannot copy out of meta tensor").
_LOADING = threading.RLock()


@dataclass
class LoadedModel:
    """A model in memory: its base pipeline, made on first edit an editor over its weights, and
    the LoRA adapters loaded into them."""

    model_id: str
    family: FamilyAdapter
    pipe: Any
    _editor: Any = field(default=None, repr=False)
    _adapters: Adapters | None = field(default=None, repr=False)

    def use_loras(self, loras: tuple[LoraUse, ...]) -> None:
        """Exactly these LoRAs for the next run (none: the base weights alone). Under the run lock."""
        if self._adapters is None:
            if not loras:
                return
            self._adapters = Adapters(self.pipe, self.model_id)
        with _LOADING:  # loading an adapter goes through the same lazy imports as a model load
            self._adapters.activate(loras)

    def editor(self) -> Any:
        if self._editor is None:
            with _LOADING:
                self._editor = self.family.editor(self.pipe)
        return self._editor


class ModelCache:
    """The served models' pipelines, loaded on first use (or at preload), at most `max_loaded` at once.

    Thread-safe: loads are serialised process-wide, lookups are not blocked by a load.
    """

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        cache_dir: Path,
        device: str = "auto",
        max_loaded: int = 3,
        dtype: str | None = None,
        optimizations: optimize.Optimizations | None = None,
        threads: int | None = None,
    ) -> None:
        """`dtype` ("bfloat16", "float16", "float32") overrides the device's usual one: loading on
        the CPU in the dtype the GPU will use halves the memory a Modal snapshot holds.
        `optimizations`: what pipelines/optimize.py applies after a load (None: the device's defaults).
        `threads`: torch's CPU threads (None: pipelines/threads.py's default), set before the first load."""
        third_party_logs.quiet()
        self.specs = {spec.id: spec for spec in specs}
        self.cache_dir = Path(cache_dir)
        # Resolved on first use: "auto" asks torch, seconds to import, and a server answers
        # /health before that. A device named is checked at once, so a wrong one stops the start.
        self._device_preference = device
        self._device = None if device == "auto" else pick_device(device)
        self._threads_setting = threads
        self._threads: int | None = None
        self.dtype = dtype
        self.optimizations = optimizations
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        # What /health/ready and /metrics say of each model: its state, why it failed, the last
        # load's duration.
        self._states: dict[str, tuple[ModelState, str | None]] = dict.fromkeys(self.specs, ("not_loaded", None))
        self.load_seconds: dict[str, float] = {}
        self._told_absent: set[str] = set()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = pick_device(self._device_preference)
        return self._device

    @device.setter
    def device(self, device: str) -> None:
        self._device = device

    def threads(self) -> int:
        """torch's CPU threads, set on the first call (imports torch)."""
        if self._threads is None:
            self._threads = use_threads(self._threads_setting)
        return self._threads

    def say_absent_weights(self) -> None:
        """At start, one line for each served hub model whose weights are not on this machine
        (read from the hub cache's files, no torch), so the first request need not find out;
        that request's own 503 then goes unlogged, as a second one's does."""
        for spec in self.specs.values():
            if spec.source.startswith("hub:") and not is_present(spec, self.cache_dir):
                self._told_absent.add(spec.id)
                log.warning("%s: %s", spec.id, WeightsAbsent(spec))

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def state(self, model_id: str) -> tuple[ModelState, str | None]:
        return self._states[model_id]

    def get(self, model_id: str) -> LoadedModel:
        """The model, loading it if needed. A failed load raises and is retried next time.

        `model_id` is one of `specs`: the engines only ever ask for the models they serve.
        """
        with self._lock:
            if model_id in self._loaded:
                self._loaded.move_to_end(model_id)
                return self._loaded[model_id]
        spec = self.specs[model_id]
        if spec.source.startswith("hub:") and not is_present(spec, self.cache_dir):
            # Known from the hub cache's files: said at once, not after another model's load.
            failure = self._absent(WeightsAbsent(spec))
            self._states[model_id] = ("failed", failure.message)
            raise failure
        with _LOADING:
            with self._lock:  # loaded while we waited for our turn?
                if model_id in self._loaded:
                    return self._loaded[model_id]
            self._states[model_id] = ("loading", None)
            began = time.monotonic()
            try:
                model = self._load(self.specs[model_id])
            except errors.APIError as failure:
                self._states[model_id] = ("failed", failure.message)
                raise
            self.load_seconds[model_id] = time.monotonic() - began
            log.info("loaded %s in %.1f s on %s", model_id, self.load_seconds[model_id], self.device)
            with self._lock:
                self._loaded[model_id] = model
                self._states[model_id] = ("ready", None)
                while len(self._loaded) > self.max_loaded:
                    evicted, _ = self._loaded.popitem(last=False)
                    self._states[evicted] = ("not_loaded", None)
                    log.info("evicted %s (more than %d models loaded)", evicted, self.max_loaded)
            self.free_memory()
            return model

    def _absent(self, absent: WeightsAbsent) -> errors.APIError:
        """The 503 for weights not on this machine; the log says so once, not a line per request."""
        if absent.model not in self._told_absent:
            self._told_absent.add(absent.model)
            log.error("%s: %s", absent.model, absent)
        return errors.model_unavailable(
            absent.model,
            f"The weights of model {absent.model} are not on this server. "
            f"Its operator can fetch them with `imagegen pull {absent.pull}` (on Modal: "
            f"`modal run modal_app.py::download --models {absent.pull}`).",
        )

    def _load(self, spec: ModelSpec) -> LoadedModel:
        family = FAMILIES[spec.family]
        try:
            source = weights_source(spec, self.cache_dir)
            config = single_file_config(spec, self.cache_dir)
        except WeightsAbsent as absent:
            raise self._absent(absent) from None
        try:
            self.threads()
            log.info("loading %s from %s on %s", spec.id, source, self.device)
            pipe = family.load(source, spec.variant, self.torch_dtype(), self.device, config=config)
            _decode_per_image(pipe, self.device)
            optimize.apply(pipe, self.optimizations, self.device, compile_warm_up(family, spec, pipe))
        except Exception as exc:
            log.exception("loading %s failed", spec.id)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise errors.model_load_failed(spec.id, reason) from None
        return LoadedModel(model_id=spec.id, family=family, pipe=pipe)

    def move_to(self, device: str) -> None:
        """Move the loaded pipelines (and later loads) to `device`, e.g. once a GPU is attached."""
        with _LOADING, self._lock:
            self.device = device
            for model_id, model in self._loaded.items():
                model.pipe.to(device=device, dtype=self.torch_dtype())  # editors share these modules
                _decode_per_image(model.pipe, device)
                optimize.apply(
                    model.pipe,
                    self.optimizations,
                    device,
                    compile_warm_up(model.family, self.specs[model_id], model.pipe),
                )

    def torch_dtype(self) -> Any:
        """The dtype loads use: the override, else what the device runs best."""
        if self.dtype is None:
            return pick_dtype(self.device)
        import torch

        return getattr(torch, self.dtype)

    def free_memory(self) -> None:
        gc.collect()
        # Ask CUDA only when we run on it: torch caches its first answer, and an early "no GPU"
        # (say, while a Modal memory snapshot is taken) would stick after the GPU arrives.
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _decode_per_image(pipe: Any, device: str) -> None:
    """On a CPU the VAE decodes a batch faster one image at a time (scripts/bench_batching.py's
    companion figures in the README: 0.42x the time for 8 at 256x256, 0.64x for 4 at 512x512);
    elsewhere diffusers' whole-batch decode stays. It also keeps a batched image's pixels
    closer to the same image made alone."""
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_slicing"):
        return
    if device == "cpu":
        vae.enable_slicing()
    else:
        vae.disable_slicing()
