"""From a request to a Job, piece by piece: sizes, quality → steps, strength → steps, previews."""

from __future__ import annotations

import pytest

from handlers.http_errors import http_status
from handlers.images.resolve import generation_job
from handlers.images.schemas import ImageGenerationRequest
from handlers.images.sizes import parse_size, render_size
from pipelines.contract.catalog import CATALOG
from pipelines.contract.errors import APIError
from pipelines.contract.job import denoising_steps, steps_for_strength
from pipelines.worker import partial_steps

SD_TURBO = CATALOG["sd-turbo"]  # 256-768 px, multiple of 8
FLUX = CATALOG["tiny-flux"]  # 64-1024 px, multiple of 16
INPAINTING = CATALOG["sdxl-inpainting"]  # steps: low 15, standard 25, hd 40


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "auto", " AUTO "])
def test_no_size_or_auto_leaves_the_size_to_the_model(text: str | None) -> None:
    assert parse_size(text, SD_TURBO) is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024x1024", (1024, 1024)), ("1792x1024", (1792, 1024)), ("640x384", (640, 384)), ("512 × 768", (512, 768))],
)
def test_openai_sizes_and_sizes_within_bounds_are_taken(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text, SD_TURBO) == size


@pytest.mark.parametrize("text", ["100x100", "650x384", "1024", "big", "0x0", "808x512", "3856x2160", "1600x512"])
def test_other_sizes_are_a_400_that_lists_what_is_valid(text: str) -> None:
    with pytest.raises(APIError) as caught:
        parse_size(text, SD_TURBO)
    error = caught.value
    assert (http_status(error), error.param) == (400, "size")
    assert "from 256 to 768 and a multiple of 8" in error.message


@pytest.mark.parametrize(
    ("spec", "asked", "rendered"),
    [
        (SD_TURBO, (1792, 1024), (768, 440)),
        (INPAINTING, (256, 256), (512, 512)),
        (FLUX, (1024, 1792), (592, 1024)),
        (SD_TURBO, (512, 512), (512, 512)),
    ],
)
def test_the_render_size_keeps_the_shape_within_the_models_bounds(spec, asked, rendered) -> None:
    width, height = render_size(asked, spec)
    assert (width, height) == rendered
    assert all(spec.min_side <= side <= spec.max_side and side % spec.multiple == 0 for side in (width, height))
    assert abs(width / height - asked[0] / asked[1]) < spec.multiple / min(width, height)


# --- quality and steps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quality", "steps"),
    [("low", 15), ("medium", 25), ("standard", 25), ("auto", 25), (None, 25), ("high", 40), ("hd", 40)],
)
def test_quality_picks_the_models_step_count(quality: str | None, steps: int) -> None:
    request = ImageGenerationRequest(prompt="a lighthouse", quality=quality)
    assert generation_job(request, INPAINTING, max_prompt_chars=100).steps == steps


def test_num_inference_steps_overrides_quality() -> None:
    request = ImageGenerationRequest(prompt="a lighthouse", quality="hd", num_inference_steps=7)
    assert generation_job(request, INPAINTING, max_prompt_chars=100).steps == 7


@pytest.mark.parametrize(
    ("steps", "strength", "runs", "raised"),
    [(4, 1.0, 4, 4), (1, 0.7, 0, 2), (4, 0.7, 2, 4), (1, 0.1, 0, 10), (10, 0.1, 1, 10), (3, 0.5, 1, 3)],
)
def test_a_partial_strength_never_leaves_a_run_without_steps(
    steps: int, strength: float, runs: int, raised: int
) -> None:
    assert denoising_steps(steps, strength) == runs
    assert steps_for_strength(steps, strength) == raised
    assert denoising_steps(steps_for_strength(steps, strength), strength) >= 1


# --- previews ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "steps", "strength", "after"),
    [
        (1, 4, 1.0, [2]),
        (3, 4, 1.0, [1, 2, 3]),
        (3, 2, 1.0, [1]),
        (2, 10, 0.5, [2, 4]),
        (0, 4, 1.0, []),
        (2, 1, 1.0, []),
        (3, 3, 0.7, [1]),
    ],
)
def test_previews_are_spread_over_the_run_and_never_at_its_last_step(count, steps, strength, after) -> None:
    assert partial_steps(count, steps, strength) == after
