"""The model catalog: what each servable model is, as data (part of the contract: both sides read it).

The entries' shape is model_spec.py's, the pinned hub models are hub_models.py's; here are the
built-in tiny models, the catalog itself, and the entries made for a local folder or file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.contract.families import FAMILY_FACTS, FAMILY_NAMES, FamilyName
from pipelines.contract.hub_models import REAL
from pipelines.contract.model_spec import ModelSpec, Style, Task, styles
from pipelines.contract.safetensors_header import NotSafetensors, read_header

__all__ = [
    "CATALOG",
    "DEFAULT_MODELS",
    "FAMILY_NAMES",
    "REAL",
    "TINY",
    "ModelSpec",
    "Style",
    "Task",
    "UnknownModel",
    "lookup",
]


# The built-in offline models: tiny random-weight pipelines of each family. They make noise,
# not pictures, but run every code path in seconds on a CPU. What differs from family to family
# is in the family's facts (pipelines/contract/families.py).
def _tiny(family: FamilyName) -> ModelSpec:
    facts = FAMILY_FACTS[family]
    fields: dict[str, Any] = {
        "id": f"tiny-{family}",
        "source": f"tiny:{family}",
        "family": family,
        "description": f"Tiny random-weight {facts.title} pipeline (noise; for tests and trying the API offline).",
        "sizes": ((256, 256), (512, 512), (1024, 1024), (1792, 1024), (1024, 1792)),
        "min_side": 64,
        "max_side": 1024,
        "default_size": (512, 512),
        "styles": styles(*facts.tiny_guidance),
        "max_n": 10,
        "gpu": "T4",
        "host_memory_gib": 4,
    }
    return ModelSpec(**{**fields, **facts.tiny})


TINY = tuple(_tiny(family) for family in FAMILY_NAMES)

CATALOG: dict[str, ModelSpec] = {spec.id: spec for spec in (*TINY, *REAL)}
DEFAULT_MODELS = tuple(spec.id for spec in TINY)

# A local folder's pipeline class tells us its family.
_FAMILY_BY_PIPELINE = {pipeline: family for family, facts in FAMILY_FACTS.items() for pipeline in facts.pipelines}


def family_template(family: str) -> ModelSpec:
    """The family's first real model that generates: what a folder or file of that family is served like."""
    return next(spec for spec in REAL if spec.family == family and "generate" in spec.tasks)


class UnknownModel(ValueError):
    """A model name that is neither in the catalog nor a usable local diffusers folder."""


def spec_for_folder(path: Path) -> ModelSpec:
    """A catalog entry for a local diffusers folder (`model_index.json` names its pipeline)."""
    index = path / "model_index.json"
    try:
        pipeline_class = json.loads(index.read_text())["_class_name"]
    except (OSError, ValueError, KeyError) as exc:
        raise UnknownModel(f"{path} is not a diffusers model folder (no readable model_index.json)") from exc
    family = _FAMILY_BY_PIPELINE.get(pipeline_class)
    if family is None:
        known = ", ".join(sorted(_FAMILY_BY_PIPELINE))
        raise UnknownModel(f"{path}: pipeline {pipeline_class} is not supported (supported: {known})")
    template = family_template(family)
    tasks: tuple[Task, ...] = (
        ("edit", "variation") if pipeline_class.endswith("InpaintPipeline") else ("generate", "edit", "variation")
    )
    return replace(
        template,
        id=path.resolve().name,
        source=str(path.resolve()),
        revision=None,
        variant=None,  # a folder's files are whatever it holds
        loras={},
        tasks=tasks,
        description=f"Local {pipeline_class} folder {path.resolve()}",
    )


_SINGLE_FILE = [facts for facts in FAMILY_FACTS.values() if facts.checkpoint_keys]
_SINGLE_FILE_FAMILIES = (
    ", ".join(f.single_file_name or "" for f in _SINGLE_FILE[:-1]) + f" or {_SINGLE_FILE[-1].single_file_name}"
)


def _family_of_checkpoint(keys: list[str]) -> FamilyName | None:
    """The family whose checkpoint markers the keys have (A1111/ComfyUI layouts)."""

    def has(prefixes: tuple[str, ...]) -> bool:
        return any(key.startswith(prefixes) for key in keys) if prefixes else False

    return next(
        (
            family
            for family, facts in FAMILY_FACTS.items()
            if has(facts.checkpoint_keys) and not has(facts.checkpoint_keys_unless)
        ),
        None,
    )


def _safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a .safetensors file, not its data."""
    try:
        return [key for key in read_header(path) if key != "__metadata__"]
    except NotSafetensors as exc:
        raise UnknownModel(str(exc)) from None


def spec_for_file(path: Path) -> ModelSpec:
    """A catalog entry for a single-file checkpoint, its family read from the file's keys."""
    keys = _safetensors_keys(path)
    family = _family_of_checkpoint(keys)
    if family is None:
        raise UnknownModel(
            f"{path}: not a single-file checkpoint of {_SINGLE_FILE_FAMILIES} (none of its "
            f"{len(keys)} tensor names is laid out like one; a LoRA goes in IMAGEGEN_LORA_DIR)"
        )
    for prefix, why in FAMILY_FACTS[family].checkpoint_refused:
        if any(key.startswith(prefix) for key in keys):
            raise UnknownModel(f"{path}: {why}")
    template = family_template(family)
    return replace(
        template,
        id=path.resolve().stem,
        source=str(path.resolve()),
        revision=None,
        variant=None,
        loras={},
        config=template.id,
        tasks=("generate", "edit", "variation"),
        description=f"Single-file {family} checkpoint {path.resolve()}",
    )


def lookup(name: str, extra: tuple[ModelSpec, ...] = ()) -> ModelSpec:
    """A catalog id (or an id among `extra`, an operator's own entries), or a path to a local
    diffusers folder."""
    for spec in extra:
        if spec.id == name:
            return spec
    if name in CATALOG:
        return CATALOG[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return spec_for_folder(path)
    if path.is_file() and path.suffix == ".safetensors":
        return spec_for_file(path)
    raise UnknownModel(
        f"unknown model {name!r}: not a catalog id ({', '.join(CATALOG)}), a diffusers folder, nor "
        "a single-file .safetensors checkpoint"
    )
