"""LoRA adapters on a loaded model: loaded once, kept (at most `capacity`), switched per job.

diffusers' PEFT backend keeps each adapter beside the base weights, never merged into them: a
job activates exactly its set at its scales, and a job with none switches LoRA off, which runs
the base layers alone, so its pixels are the no-LoRA pixels byte for byte.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import OrderedDict
from typing import Any

from pipelines import optimize
from pipelines.contract import errors
from pipelines.contract.job import LoraUse
from pipelines.prompt_cache import prompt_cache

log = logging.getLogger("imagegen")

DEFAULT_CAPACITY = 8  # adapters kept per model; each costs its (small) weights in memory


def _adapter_name(lora: LoraUse) -> str:
    # PEFT names become module attribute names: letters, digits and underscores only.
    return "lora_" + re.sub(r"\W", "_", lora.name)


def _load_arguments(source: str) -> tuple[str, dict[str, Any]]:
    """What load_lora_weights takes for a file path or "hub:org/repo[@revision][/file.safetensors]"."""
    if not source.startswith("hub:"):
        return source, {}
    org, _, rest = source.removeprefix("hub:").partition("/")
    name_and_revision, _, file = rest.partition("/")
    name, _, revision = name_and_revision.partition("@")
    options: dict[str, Any] = {}
    if revision:
        options["revision"] = revision
    if file:
        options["weight_name"] = file
    return f"{org}/{name}", options


class Adapters:
    """The LoRAs loaded into one pipeline (and the editors that share its modules)."""

    def __init__(self, pipe: Any, model_id: str, capacity: int = DEFAULT_CAPACITY) -> None:
        self.pipe = pipe
        self.model_id = model_id
        self.capacity = capacity
        self._loaded: OrderedDict[str, str] = OrderedDict()  # source -> adapter name
        self._active = False
        self._current: tuple[LoraUse, ...] = ()
        optimize.unfuse_for_adapters(pipe)  # fused attention would bypass the adapters' layers

    def activate(self, loras: tuple[LoraUse, ...]) -> None:
        """Exactly `loras` at their scales from the next pipeline call on; none: LoRA off.

        Called under the model's run lock: adapters live on modules that every run shares.
        """
        if loras != self._current:
            # A LoRA on the text encoder changes what a prompt embeds to: cached embeddings are stale.
            cache = prompt_cache(self.pipe)
            if cache is not None:
                cache.clear()
            self._current = loras
        if not loras:
            if self._active:
                self.pipe.disable_lora()
                self._active = False
            return
        names = [self._load(lora) for lora in loras]
        self.pipe.enable_lora()
        self.pipe.set_adapters(names, [lora.scale for lora in loras])
        self._active = True

    def _load(self, lora: LoraUse) -> str:
        name = self._loaded.get(lora.source)
        if name is not None:
            self._loaded.move_to_end(lora.source)
            return name
        while len(self._loaded) >= self.capacity:
            _, evicted = self._loaded.popitem(last=False)
            self.pipe.delete_adapters(evicted)
        name = _adapter_name(lora)
        where, options = _load_arguments(lora.source)
        try:
            with warnings.catch_warnings():
                # PEFT warns on every adapter after the first; several adapters are the point here.
                warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
                self.pipe.load_lora_weights(where, adapter_name=name, **options)
        except Exception as exc:  # a file for another architecture fails on its shapes
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.info("LoRA %s does not load into %s: %s", lora.name, self.model_id, reason)
            raise errors.invalid(
                "lora", f"LoRA {lora.name!r} does not fit model {self.model_id}: {reason}", code="lora_mismatch"
            ) from None
        if not any(name in adapters for adapters in self.pipe.get_list_adapters().values()):
            # No layer of this model matched the file's keys: nothing was loaded.
            raise errors.invalid(
                "lora",
                f"LoRA {lora.name!r} does not fit model {self.model_id}: none of its layers matches this model's.",
                code="lora_mismatch",
            )
        self._loaded[lora.source] = name
        log.info("LoRA %s loaded into %s", lora.name, self.model_id)
        return name
