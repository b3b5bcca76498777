"""The tiny pipelines of the newer families, saved and loaded back as the app loads a model folder.

Each family's pipeline is built once, written with `save_pretrained` and read back with
`DiffusionPipeline.from_pretrained`; then it must generate at square and non-square sizes,
reproducibly for a seed, switch to its edit/inpaint pipeline, and its family's preview recipe (the
streaming-preview recipe) must turn the last step's latents into exactly the final image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.families import FAMILIES as ADAPTERS
from pipelines.families import TINY_BUILDERS

# The newer families (the older ones run through the app in the other tests); builders from the families.
FAMILIES = ("zimage", "sd3", "qwen-image", "flux-kontext")
# Families whose base pipeline switches to an inpainting one with AutoPipelineForInpainting.
INPAINTING = ("zimage", "sd3", "qwen-image")
STEPS = 2


def _size_kwargs(family: str, height: int, width: int) -> dict[str, Any]:
    # Kontext rescales any height/width to max_area (default 1024**2) unless told the area.
    return {"max_area": height * width} if family == "flux-kontext" else {}


def _decoded(family: str, pipe: Any, latents: Any, height: int, width: int) -> Image.Image:
    """The family's preview recipe (pipelines/families), decoded at full size."""
    latents = ADAPTERS[family].vae_latents(pipe, latents, height, width).to(pipe.vae.dtype)
    with torch.no_grad():
        decoded = pipe.vae.decode(latents, return_dict=False)[0]
    if decoded.ndim == 5:  # Qwen-Image's VAE decodes frames
        decoded = decoded[:, :, 0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")[0]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every family built (seeded, without touching the global RNG) and saved once."""
    root = tmp_path_factory.mktemp("tiny_families")
    paths = {}
    for family in FAMILIES:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            pipe = TINY_BUILDERS[family]()
        paths[family] = root / family
        pipe.save_pretrained(paths[family], safe_serialization=True)
    return paths


@pytest.fixture(scope="module")
def pipes(folders: dict[str, Path]) -> dict[str, Any]:
    import diffusers

    loaded = {}
    for family, folder in folders.items():
        loaded[family] = diffusers.DiffusionPipeline.from_pretrained(folder)
        loaded[family].set_progress_bar_config(disable=True)
    return loaded


def _generate(pipe: Any, height: int, width: int, seed: int = 7, **kwargs: Any) -> tuple[Image.Image, Any]:
    """One image and the latents the step callback saw last."""
    seen = {}

    def keep_latents(_pipe: Any, _step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        seen["latents"] = tensors["latents"]
        return tensors

    image = pipe(
        prompt="a red fox in the snow",  # by name: the edit pipelines take `image` first
        height=height,
        width=width,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(seed),
        callback_on_step_end=keep_latents,
        **kwargs,
    ).images[0]
    return image, seen["latents"]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("height", "width"), [(64, 64), (64, 96)])
def test_text_to_image_size_seed_and_preview(pipes: dict[str, Any], family: str, height: int, width: int) -> None:
    pipe = pipes[family]
    size = _size_kwargs(family, height, width)
    image, latents = _generate(pipe, height, width, **size)
    assert isinstance(image, Image.Image) and image.size == (width, height)
    again, _ = _generate(pipe, height, width, **size)
    assert np.array_equal(_pixels(image), _pixels(again))
    other, _ = _generate(pipe, height, width, seed=8, **size)
    assert not np.array_equal(_pixels(image), _pixels(other))

    preview = _decoded(family, pipe, latents, height, width)
    assert preview.size == (width, height)
    # The preview of the last step is the final image: same unpacking, scale and shift.
    assert np.abs(_pixels(preview) - _pixels(image)).max() <= 1


@pytest.mark.parametrize("family", INPAINTING)
def test_inpaint_from_pipe(pipes: dict[str, Any], family: str) -> None:
    import diffusers

    inpaint = diffusers.AutoPipelineForInpainting.from_pipe(pipes[family])
    assert "Inpaint" in type(inpaint).__name__
    picture = Image.new("RGB", (64, 64), (200, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    image = inpaint(
        "a red fox in the snow",
        image=picture,
        mask_image=mask,
        height=64,
        width=64,
        strength=0.9,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(7),
    ).images[0]
    assert image.size == (64, 64)


def test_kontext_edits_one_image(pipes: dict[str, Any]) -> None:
    pipe = pipes["flux-kontext"]
    picture = Image.new("RGB", (96, 64), (30, 90, 200))
    # The asked size only holds with max_area; _auto_resize=False keeps the input at its own
    # size instead of Kontext's ~1MP preferred resolutions.
    edit = {"image": picture, "max_area": 64 * 96, "_auto_resize": False}
    image, latents = _generate(pipe, 64, 96, **edit)
    assert image.size == (96, 64)
    again, _ = _generate(pipe, 64, 96, **edit)
    assert np.array_equal(_pixels(image), _pixels(again))
    unedited, _ = _generate(pipe, 64, 96, max_area=64 * 96)
    assert not np.array_equal(_pixels(image), _pixels(unedited))  # the input image conditions the result
    preview = _decoded("flux-kontext", pipe, latents, 64, 96)
    assert np.abs(_pixels(preview) - _pixels(image)).max() <= 1
