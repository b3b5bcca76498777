"""`usage` on every answer, complete and counted as the README says: the prompt's tokens by the
model's own tokenizer, input and output images as latent patches at the model's patch size."""

from __future__ import annotations

import io

import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import png_bytes

SMALL = "64x64"
FAST = {"num_inference_steps": 1}


def complete(usage) -> dict[str, int]:
    """The usage's numbers, after checking that every field is there and adds up."""
    assert usage is not None
    details = usage.input_tokens_details
    assert details is not None and details.text_tokens is not None and details.image_tokens is not None
    assert usage.input_tokens == details.text_tokens + details.image_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    return {
        "text": details.text_tokens,
        "image": details.image_tokens,
        "output": usage.output_tokens,
        "total": usage.total_tokens,
    }


def generated(client: OpenAI, **fields) -> dict[str, int]:
    fields = {"model": "tiny-sd", "prompt": "a red fox", "size": SMALL, "extra_body": FAST, **fields}
    return complete(client.images.generate(response_format="b64_json", **fields).usage)


def upload(size: tuple[int, int] = (64, 64)) -> io.BytesIO:
    data = io.BytesIO(png_bytes(Image.new("RGB", size, (200, 80, 40))))
    data.name = "photo.png"
    return data


def test_difys_call_shape_reads_total_tokens(client: OpenAI) -> None:
    """Dify's OpenAI plugin: a gpt-image name (standing for the default model), then `usage.total_tokens`."""
    response = client.images.generate(
        model="gpt-image-1", prompt="a lighthouse at dusk", size="auto", n=1, quality="low", moderation="auto"
    )
    assert response.data[0].b64_json  # gpt-image names answer inline
    assert isinstance(response.usage.total_tokens, int) and response.usage.total_tokens > 0
    complete(response.usage)


def test_counts_follow_the_prompt_the_size_and_n(client: OpenAI) -> None:
    short, long = generated(client, prompt="a fox"), generated(client, prompt="a fox asleep under a snowy pine tree")
    assert long["text"] > short["text"] > 0 and short["image"] == 0
    # tiny-sd is a UNet with an 8x VAE: one token per latent position, 8x8 pixels.
    assert short["output"] == (64 // 8) * (64 // 8)
    assert generated(client, size="128x64")["output"] == 2 * short["output"]
    assert generated(client, n=2)["output"] == 2 * short["output"]
    with_negative = generated(client, prompt="a fox", extra_body={**FAST, "negative_prompt": "blurry, dark"})
    assert with_negative["text"] > short["text"]


def test_a_transformer_family_counts_2x2_latent_patches(client: OpenAI) -> None:
    usage = generated(client, model="tiny-flux")
    assert usage["output"] == (64 // 16) * (64 // 16) and usage["text"] > 0


def test_edits_count_their_input_image(client: OpenAI) -> None:
    edit = client.images.edit(
        model="tiny-sd", image=upload(), prompt="a red fox", size=SMALL, response_format="b64_json", extra_body=FAST
    )
    counts = complete(edit.usage)
    assert counts["image"] == (64 // 8) * (64 // 8) and counts["text"] > 0


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's, on create_variation
def test_variations_count_their_input_image(client: OpenAI) -> None:
    variation = client.images.create_variation(model="tiny-sd", image=upload(), size=SMALL, response_format="b64_json")
    counts = complete(variation.usage)
    assert counts["image"] == (64 // 8) * (64 // 8) and counts["text"] == 0  # a variation has no prompt


def test_url_answers_carry_usage_too(client: OpenAI) -> None:
    response = client.images.generate(model="tiny-sd", prompt="x", size=SMALL, response_format="url", extra_body=FAST)
    assert response.data[0].url and complete(response.usage)["output"] == 64


@pytest.mark.parametrize("task", ["generate", "edit"])
def test_stream_completed_events_carry_the_whole_usage(client: OpenAI, task: str) -> None:
    common = {"model": "tiny-sd", "prompt": "a red fox", "size": SMALL, "stream": True, "partial_images": 1}
    if task == "generate":
        events = list(client.images.generate(n=2, extra_body={"num_inference_steps": 2}, **common))
    else:
        events = list(client.images.edit(image=upload(), extra_body={"num_inference_steps": 2}, **common))
    completed = [event for event in events if event.type.endswith(".completed")]
    assert completed and all(complete(event.usage) for event in completed)
    assert {event.usage.output_tokens for event in completed} == {64 * len(completed)}
    assert all(getattr(event, "usage", None) is None for event in events if event.type.endswith(".partial_image"))
