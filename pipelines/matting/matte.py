"""One matting model, loaded on first use onto the generator's device, run on a job's images at once."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from pipelines.contract import errors
from pipelines.contract.matting import MattingSpec

log = logging.getLogger("imagegen")

# Bump when pipelines/matting/tiny_matte.py changes what it builds, so cached folders are rebuilt.
TINY_MATTE_VERSION = 1
# BiRefNet's input normalisation (ImageNet's), which the tiny twin shares.
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny_matte_dir(cache_dir: Path) -> Path:
    """The built tiny matte, building it on first use (milliseconds, offline)."""
    from pipelines.matting.tiny import build_tiny_matte

    dest = Path(cache_dir) / "tiny" / f"matte-v{TINY_MATTE_VERSION}"
    if (dest / "config.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}-{uuid.uuid4().hex}"  # never a half-built folder in place
    try:
        build_tiny_matte(staging)
        os.rename(staging, dest)
    except OSError:
        if not (dest / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def fetch_matting(spec: MattingSpec, cache_dir: Path, *, local_only: bool = False) -> str:
    """The model's folder on this machine: the pinned hub snapshot (downloaded unless `local_only`),
    or the tiny one built."""
    if spec.source.startswith("tiny:"):
        return str(tiny_matte_dir(cache_dir))
    if spec.source.startswith("dir:"):  # a folder already on this machine (scripts/check_birefnet.py)
        return spec.source.removeprefix("dir:")
    from huggingface_hub import snapshot_download

    # What a load reads: the model's code, its configs, its safetensors (not any .pth beside them).
    return snapshot_download(
        spec.source.removeprefix("hub:"),
        revision=spec.revision,
        local_files_only=local_only,
        allow_patterns=["*.py", "*.json", "*.safetensors"],
    )


def _from_folder(folder: str) -> Any:
    """The model as its folder's own code builds it (the hub's at the pinned revision): the class
    `AutoModelForImageSegmentation` names in its config's `auto_map`, resolved as transformers does."""
    from transformers import AutoConfig, AutoModelForImageSegmentation
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    reference = getattr(config, "auto_map", {}).get(AutoModelForImageSegmentation.__name__)
    if reference is None:  # a class transformers knows itself
        return AutoModelForImageSegmentation.from_pretrained(folder, config=config)
    model_class = get_class_from_dynamic_module(reference, folder)
    # Remote code written for transformers 4 (BiRefNet's) never calls `post_init()`, which in
    # transformers 5 sets the tied-weight map that loading reads: such a model ties nothing.
    if not hasattr(model_class, "all_tied_weights_keys"):
        model_class.all_tied_weights_keys = {}
    return model_class.from_pretrained(folder, config=config)


class Matting:
    """Cuts subjects out: `cut_out` gives each image an alpha channel from the model's matte.
    Thread-safe: models on different threads share it, one run at a time."""

    def __init__(self, spec: MattingSpec, cache_dir: Path) -> None:
        self.spec = spec
        self.cache_dir = Path(cache_dir)
        self._model: Any = None
        self._device: str | None = None
        self._lock = threading.Lock()

    def _load(self, device: str) -> Any:
        import torch
        from transformers.utils import logging as transformers_logging

        if self._model is not None and self._device == device:
            return self._model
        if self._model is None:
            try:
                folder = fetch_matting(self.spec, self.cache_dir, local_only=True)
            except Exception:  # missing or incomplete, however huggingface_hub words it
                raise errors.model_unavailable(
                    self.spec.id,
                    f"The matting model {self.spec.id} that transparent backgrounds need is not on this "
                    f"machine: run `imagegen pull {self.spec.id}`.",
                ) from None
            began = time.monotonic()
            transformers_logging.disable_progress_bar()
            self._model = _from_folder(folder).eval()
            log.info("loaded matting model %s in %.1f s", self.spec.id, time.monotonic() - began)
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self._model, self._device = self._model.to(device=device, dtype=dtype), device
        return self._model

    def cut_out(self, images: list[Image.Image], device: str) -> list[Image.Image]:
        """`images` (one size) as RGBA: alpha is the subject's matte, 0 on the background."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        if not images:
            return []
        side = self.spec.resolution
        rgb = [image.convert("RGB") for image in images]
        batch = np.stack([np.asarray(image.resize((side, side), Image.Resampling.BILINEAR)) for image in rgb])
        with self._lock, torch.inference_mode():
            model = self._load(device)
            pixels = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255
            mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
            std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)
            logits = model(((pixels - mean) / std).to(next(model.parameters()).dtype))[-1]
            matte = F.interpolate(logits.float().sigmoid(), size=rgb[0].size[::-1], mode="bilinear")
            alphas = (matte[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        cut = []
        for image, alpha in zip(rgb, alphas, strict=True):
            image.putalpha(Image.fromarray(alpha, "L"))
            cut.append(image)
        return cut
