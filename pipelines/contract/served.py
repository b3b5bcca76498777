"""The models one server serves, and the names that stand for them.

Clients hard-code OpenAI's model names, today's and tomorrow's: every `gpt-image*`,
`chatgpt-image*` and `dall-e*` name stands for a served model without configuration. It is the
default model, unless the request needs what the default cannot do (several input images, an
instruction edit) and another served model can. A configured alias always wins.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipelines.contract.catalog import ModelSpec, Task, UnknownModel, lookup
from pipelines.contract.loras import LoraLibrary

GPT_IMAGE_FAMILIES = ("gpt-image", "chatgpt-image")  # they answer b64_json, always
OPENAI_FAMILIES = (*GPT_IMAGE_FAMILIES, "dall-e")
# What a request may need of a model beyond its task.
Need = Literal["references", "instructions"]


def is_openai_name(name: str) -> bool:
    return name.strip().lower().startswith(OPENAI_FAMILIES)


def is_gpt_image_name(name: str) -> bool:
    return name.strip().lower().startswith(GPT_IMAGE_FAMILIES)


def has(spec: ModelSpec, need: Need) -> bool:
    if need == "references":
        return spec.max_input_images > 1
    return spec.instruction_edits


@dataclass(frozen=True)
class ServedModels:
    specs: tuple[ModelSpec, ...]
    aliases: dict[str, str]  # configured, and the paths that models served by path were given as
    loras: LoraLibrary = field(default_factory=LoraLibrary)

    @classmethod
    def from_names(
        cls,
        names: list[str],
        aliases: dict[str, str] | None = None,
        lora_dir: Path | None = None,
        extra: tuple[ModelSpec, ...] = (),
    ) -> ServedModels:
        """`names`: catalog ids, ids of `extra` (an operator's models file), or local folders."""
        specs = tuple(lookup(name, extra) for name in names)
        if not specs:
            raise UnknownModel("no models to serve")
        ids = [spec.id for spec in specs]
        # A model served by path answers to its folder name and to the path it was given as.
        resolved = {name: spec.id for name, spec in zip(names, specs, strict=True) if name != spec.id}
        for alias, target in (aliases or {}).items():
            if target not in ids:
                raise UnknownModel(f"alias {alias!r} points at {target!r}, which is not served ({', '.join(ids)})")
            resolved[alias] = target
        return cls(specs=specs, aliases=resolved, loras=LoraLibrary(lora_dir))

    @property
    def default(self) -> ModelSpec:
        return self.specs[0]

    def get(self, name: str | None, needs: Collection[Need] = (), task: Task | None = None) -> ModelSpec | None:
        """The model `name` stands for: an alias's target, a served id, or, for an OpenAI name or
        no name at all, the first served model (the default first) that does `task` and has
        every one of `needs` (the default, if none does)."""
        name = (name or "").strip()
        target = self.aliases.get(name, name)
        spec = next((spec for spec in self.specs if spec.id == target), None)
        if spec is None and (not name or is_openai_name(name)):
            able = (
                spec
                for spec in self.specs
                if (task is None or task in spec.tasks) and all(has(spec, need) for need in needs)
            )
            spec = next(able, self.default)
        return spec

    def having(self, need: Need) -> list[ModelSpec]:
        return [spec for spec in self.specs if has(spec, need)]

    def aliases_of(self, model_id: str) -> list[str]:
        names = [alias for alias, target in self.aliases.items() if target == model_id]
        if model_id == self.default.id:
            names += [f"{family}*" for family in OPENAI_FAMILIES]
        return sorted(names)
