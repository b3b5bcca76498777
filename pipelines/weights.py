"""Where a catalog entry's weights come from: the hub (pinned), a local folder, or built tiny."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path

from pipelines.contract.catalog import CATALOG, ModelSpec, family_template

# Bump when a tiny builder (pipelines/families/<family>/tiny.py) changes what it builds, so cached folders are rebuilt.
TINY_VERSION = 1
_build_lock = threading.Lock()


def tiny_model_dir(family: str, cache_dir: Path) -> Path:
    """The built tiny model of `family`, building it on first use (a few seconds, offline)."""
    from pipelines.tiny import build_tiny_model

    dest = Path(cache_dir) / "tiny" / f"{family}-v{TINY_VERSION}"
    with _build_lock:
        if (dest / "model_index.json").exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Build beside it and rename into place: another process may be building it too, and
        # a half-built folder must never look finished.
        staging = dest.parent / f".{dest.name}-{uuid.uuid4().hex}"
        try:
            build_tiny_model(family, staging)
            os.rename(staging, dest)
        except OSError:
            if not (dest / "model_index.json").exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


class WeightsAbsent(Exception):
    """A hub model whose pinned files are not on this machine (nothing is downloaded mid-request)."""

    def __init__(self, spec: ModelSpec, needed_by: str | None = None) -> None:
        self.pull = spec.id  # what the operator runs `imagegen pull` on
        self.model = needed_by or spec.id  # the served model that cannot load
        what = f"the configs {needed_by} loads with, those" if needed_by else "the weights"
        super().__init__(
            f"{what} of {spec.id} ({spec.source.removeprefix('hub:')} at {spec.revision}) are not "
            f"on this machine: run `imagegen pull {spec.id}`"
        )


def _hub_download(spec: ModelSpec, *, local_only: bool) -> str:
    """The pinned snapshot's folder: only the components a pipeline load reads, in the catalog's
    variant (fp16 files where the repo has them); resumes a partial download."""
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.download(
        spec.source.removeprefix("hub:"), revision=spec.revision, variant=spec.variant, local_files_only=local_only
    )


def is_present(spec: ModelSpec, cache_dir: Path) -> bool:
    """Whether the model can load with no network: hub files cached, a folder there; tiny ones build.

    Read from the hub cache's files alone, without diffusers (seconds of imports, and `imagegen
    models` asks for every catalog entry): the pinned snapshot's `model_index.json`, and each
    component it names with its files, a model's weights complete (every shard of a sharded one).
    """
    if spec.source.startswith("tiny:"):
        return True
    if spec.source.startswith("hub:"):
        from huggingface_hub import try_to_load_from_cache

        index = try_to_load_from_cache(spec.source.removeprefix("hub:"), "model_index.json", revision=spec.revision)
        return isinstance(index, str) and _components_present(Path(index).parent)
    return Path(spec.source).exists()


def _components_present(snapshot: Path) -> bool:
    components = json.loads((snapshot / "model_index.json").read_text())
    for name, value in components.items():
        if name.startswith("_") or not isinstance(value, list) or None in value:
            continue  # a setting, or a component the pipeline goes without (a safety checker)
        folder = snapshot / name
        if not folder.is_dir() or not any(folder.iterdir()):
            return False
        if (folder / "config.json").exists() and not _weights_complete(folder):
            return False
    return True


def _weights_complete(folder: Path) -> bool:
    """A model's folder holds its weights: one file, or every shard its index names."""
    for index in folder.glob("*.index*.json"):
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        if all((folder / shard).exists() for shard in shards):
            return True
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def weights_source(spec: ModelSpec, cache_dir: Path) -> str:
    """What to pass to from_pretrained: always a folder on this machine. Raises WeightsAbsent."""
    if spec.source.startswith("tiny:"):
        return str(tiny_model_dir(spec.source.removeprefix("tiny:"), cache_dir))
    if spec.source.startswith("hub:"):
        try:
            return _hub_download(spec, local_only=True)
        except Exception:
            raise WeightsAbsent(spec) from None
    return spec.source


def single_file_config(spec: ModelSpec, cache_dir: Path) -> str | None:
    """For a single-file checkpoint, the diffusers folder holding its configs and tokenizers (its
    `config`: a catalog model's weights here, or a folder); None for any other source."""
    if not spec.source.endswith(".safetensors"):
        return None
    config = spec.config or family_template(spec.family).id
    if config in CATALOG:
        try:
            return weights_source(CATALOG[config], cache_dir)
        except WeightsAbsent:
            raise WeightsAbsent(CATALOG[config], needed_by=spec.id) from None
    return config


def fetch(spec: ModelSpec, cache_dir: Path) -> str:
    """The model's weights on this machine: a hub model's pinned files downloaded into the hub
    cache (with huggingface_hub's progress bars), a tiny one built. Returns where they are."""
    if spec.source.startswith("hub:"):
        from diffusers.utils import logging as diffusers_logging

        # diffusers logs each hub hiccup ("Couldn't connect…") on its way to the error it raises;
        # the caller explains that error once.
        diffusers_logging.set_verbosity_error()
        return _hub_download(spec, local_only=False)
    return weights_source(spec, cache_dir)
