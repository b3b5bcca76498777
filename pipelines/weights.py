"""Where a catalog entry's weights come from: the hub (pinned), a local folder, or built tiny."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

from pipelines.contract.catalog import ModelSpec

# Bump when pipelines/tiny.py changes what it builds, so cached folders are rebuilt.
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


def weights_source(spec: ModelSpec, cache_dir: Path) -> tuple[str, str | None]:
    """(what to pass to from_pretrained, revision)."""
    if spec.source.startswith("tiny:"):
        return str(tiny_model_dir(spec.source.removeprefix("tiny:"), cache_dir)), None
    if spec.source.startswith("hub:"):
        return spec.source.removeprefix("hub:"), spec.revision
    return spec.source, None


def fetch(spec: ModelSpec, cache_dir: Path) -> str:
    """The model's weights on this machine: a hub model's pinned files downloaded into the hub
    cache (only what a pipeline load reads, with huggingface_hub's progress bars), a tiny one
    built. Returns where they are."""
    source, revision = weights_source(spec, cache_dir)
    if spec.source.startswith("hub:"):
        from diffusers import DiffusionPipeline

        source = DiffusionPipeline.download(source, revision=revision)
    return str(source)
