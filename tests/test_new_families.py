"""The transformer families (Z-Image, SD3.5, Qwen-Image, FLUX.1 Kontext), through the real
server and the official SDK, held to what the older families promise: sizes, seeds, masked edits
that keep every other pixel, instruction edits, variations, streamed previews, batching."""

from __future__ import annotations

import base64

import openai
import pytest
from openai import OpenAI
from PIL import Image

from pipelines.contract.catalog import CATALOG
from pipelines.contract.job import Job
from tests.conftest import png, png_bytes
from tests.jobs import small_job
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise

NEW = ["tiny-zimage", "tiny-sd3", "tiny-qwen-image", "tiny-flux-kontext"]
STEPS = {"num_inference_steps": 2}


def _file(image: Image.Image) -> tuple[str, bytes, str]:
    return ("photo.png", png_bytes(image), "image/png")


def _images(response) -> list[Image.Image]:
    return [png(base64.b64decode(item.b64_json)) for item in response.data]


@pytest.mark.parametrize("model", NEW)
def test_generations_have_the_size_and_the_seeds_asked(client: OpenAI, model: str) -> None:
    def make(seed: int, n: int):
        return client.images.generate(
            model=model,
            prompt="a red fox",
            size="96x64",
            n=n,
            response_format="b64_json",
            extra_body={"seed": seed, **STEPS},
        )

    first = make(11, 2)
    assert [image.size for image in _images(first)] == [(96, 64), (96, 64)]
    assert [item.seed for item in first.data] == [11, 12]
    # The same pixels (the files differ in their content credentials: when each was signed).
    assert [image.tobytes() for image in _images(make(11, 2))] == [image.tobytes() for image in _images(first)]
    # Image i is made with seed + i: alone, it is the same picture (a batch's float noise aside).
    alone = _images(make(12, 1))[0]
    difference = max(abs(a - b) for a, b in zip(alone.tobytes(), _images(first)[1].tobytes(), strict=True))
    assert difference <= 2, (model, difference)


@pytest.mark.parametrize("model", NEW)
def test_a_masked_edit_repaints_only_the_hole(client: OpenAI, model: str) -> None:
    original = noise((96, 64))
    (result,) = _images(
        client.images.edit(
            model=model,
            prompt="a red door",
            image=_file(original),
            mask=_file(mask_with_hole(original.size)),
            response_format="b64_json",
            extra_body=STEPS,
        )
    )
    assert result.size == original.size
    box = changed_box(original, result)
    assert box is not None and inside(box, HOLE), box


def test_kontext_follows_an_instruction_on_the_whole_image(client: OpenAI) -> None:
    original = noise((64, 64))

    def edit(prompt: str) -> Image.Image:
        return _images(
            client.images.edit(
                model="tiny-flux-kontext",
                prompt=prompt,
                image=_file(original),
                response_format="b64_json",
                extra_body={"seed": 5, **STEPS},
            )
        )[0]

    night, snow = edit("make it night"), edit("add snow")
    box = changed_box(original, night)
    assert box is not None and box[2] - box[0] > 48  # the whole image, not a patch
    assert night.tobytes() != snow.tobytes()  # the instruction reaches the model
    assert CATALOG["flux-kontext-dev"].instruction_edits and CATALOG["tiny-flux-kontext"].instruction_edits


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's, on create_variation
@pytest.mark.parametrize("model", NEW)
def test_variations_keep_the_input_size(client: OpenAI, model: str) -> None:
    varied = _images(
        client.images.create_variation(model=model, image=_file(noise((64, 48))), n=2, response_format="b64_json")
    )
    assert [image.size for image in varied] == [(64, 48), (64, 48)]
    assert varied[0].tobytes() != varied[1].tobytes()


@pytest.mark.parametrize("model", NEW)
def test_streams_send_previews_then_the_image(client: OpenAI, model: str) -> None:
    events = list(
        client.images.generate(
            model=model, prompt="x", size="96x64", stream=True, partial_images=2, extra_body={"num_inference_steps": 3}
        )
    )
    assert [event.type for event in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    for event in events:
        assert png(base64.b64decode(event.b64_json)).size[0] in (48, 96)  # previews may be half size


@pytest.mark.parametrize("model", NEW)
def test_compatible_jobs_share_one_pipeline_call(make_settings, model: str) -> None:
    from handlers.hosts.local import local_worker, served_models

    settings = make_settings(models=[model])
    worker = local_worker(served_models(settings), settings)
    job = dict(
        task="generate",
        model=model,
        n=1,
        width=64,
        height=64,
        output_width=64,
        output_height=64,
        steps=2,
        guidance=CATALOG[model].styles["natural"].guidance,
    )
    batch = worker.run_batch([Job(prompt="a fox", seeds=(1,), **job), Job(prompt="a boat", seeds=(2,), **job)])
    assert [len(rendered.images) for rendered in batch] == [1, 1]
    assert worker.batch_sizes(model) == {2: 1}
    alone = worker.run(Job(prompt="a boat", seeds=(2,), **job))
    # The same seed and prompt in a batch of two: the same picture (up to the batch's float noise).
    together, apart = png(batch[1].images[0]).convert("RGB"), png(alone.images[0]).convert("RGB")
    assert together.size == apart.size == (64, 64)
    assert max(abs(a - b) for a, b in zip(together.tobytes(), apart.tobytes(), strict=True)) <= 2


def test_qwen_image_refuses_the_one_step_its_scheduler_cannot_take(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-qwen-image", prompt="x", size="64x64", extra_body={"num_inference_steps": 1})
    assert caught.value.body["param"] == "num_inference_steps" and "at least 2" in caught.value.body["message"]


def test_a_qwen_batch_keeps_each_jobs_negative_prompt(make_settings) -> None:
    """Qwen-Image's guidance runs on the negative prompt: in a shared call, each job's own."""
    from handlers.hosts.local import local_worker, served_models

    settings = make_settings(models=["tiny-qwen-image"])
    worker = local_worker(served_models(settings), settings)

    def job(seed: int, negative_prompt: str | None = None) -> Job:
        return small_job(
            model="tiny-qwen-image", prompt="a fox", guidance=4.0, seeds=(seed,), negative_prompt=negative_prompt
        )

    alone = worker.run(job(2, "blurry")).images[0]
    plain = worker.run(job(2)).images[0]
    batch = worker.run_batch([job(1), job(2, "blurry")])
    assert worker.batch_sizes("tiny-qwen-image")[2] == 1
    batched = png(batch[1].images[0]).convert("RGB").tobytes()
    closest = min(
        (png(alone).convert("RGB").tobytes(), png(plain).convert("RGB").tobytes()),
        key=lambda other: sum(abs(a - b) for a, b in zip(batched, other, strict=True)),
    )
    assert closest == png(alone).convert("RGB").tobytes()  # made with its own negative prompt
