"""Edits with several images, on the reference-edit family (FLUX.2 [klein], `tiny-flux2` here).

The first image is the one edited; the mask (or its transparency) marks where; the others are
references. Everything the older families promise holds here too: kept pixels byte-identical,
seeds, streaming previews, variations.
"""

from __future__ import annotations

import base64

import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise


def _file(image, name: str = "photo.png") -> tuple[str, bytes, str]:
    return (name, png_bytes(image), "image/png")


def _images(response) -> list:
    return [png(base64.b64decode(item.b64_json)) for item in response.data]


def test_a_masked_edit_with_references_keeps_every_pixel_of_the_first_image_outside_the_mask(client: OpenAI) -> None:
    first, sofa, cat = noise((96, 64)), noise((64, 64)), noise((40, 72))  # the last below the model's 64 px
    response = client.images.edit(
        model="tiny-flux2",
        prompt="put the cat from the third image on the sofa",
        image=[_file(first), _file(sofa, "sofa.png"), _file(cat, "cat.png")],
        mask=_file(mask_with_hole(first.size)),
        response_format="b64_json",
        n=2,
    )
    results = _images(response)
    assert [image.size for image in results] == [(96, 64), (96, 64)]
    for result in results:
        box = changed_box(first, result)
        assert box is not None and inside(box, HOLE), box
    assert results[0].tobytes() != results[1].tobytes()


def test_an_openai_name_with_several_images_goes_to_a_model_that_takes_references(client: OpenAI) -> None:
    """gpt-image-2 stands for the default model (tiny-sd) unless the request needs more."""
    first, reference = noise((64, 48)), noise((64, 64))
    response = client.images.edit(
        model="gpt-image-2",
        prompt="the dog from the second image, in the first",
        image=[_file(first), _file(reference)],
    )
    (result,) = _images(response)  # no response_format: a GPT image name answers b64_json
    assert result.size == (64, 48)
    assert response.data[0].url is None


def test_a_model_without_references_names_the_ones_that_take_them(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="tiny-sd", prompt="x", image=[_file(noise((64, 64))), _file(noise((64, 64)))])
    body = caught.value.body
    assert body["param"] == "image" and body["code"] == "too_many_images"
    assert "tiny-flux2 (up to 4)" in body["message"]


def test_more_images_than_the_model_takes_is_a_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="tiny-flux2", prompt="x", image=[_file(noise((64, 64)))] * 5)
    assert caught.value.body["param"] == "image"
    assert "at most 4 input images; 5 were sent" in caught.value.body["message"]


def test_an_instruction_edit_follows_the_prompt_on_the_whole_image(client: OpenAI) -> None:
    original = noise((80, 48))
    first, again, other = (
        _images(
            client.images.edit(
                model="tiny-flux2",
                prompt=prompt,
                image=_file(original),
                extra_body={"seed": seed},
                response_format="b64_json",
            )
        )[0]
        for prompt, seed in (("make it night", 5), ("make it night", 5), ("make it night", 6))
    )
    assert first.size == (80, 48)
    assert first.tobytes() == again.tobytes() and first.tobytes() != other.tobytes()
    box = changed_box(original, first)
    assert box is not None and box[2] - box[0] > 40  # the whole image is the model's to change


def test_models_say_how_they_edit_and_how_many_images_they_take(client: OpenAI) -> None:
    klein, sd = client.models.retrieve("tiny-flux2"), client.models.retrieve("tiny-sd")
    assert (klein.capabilities["edits"], klein.capabilities["max_input_images"]) == ("instruction", 4)
    assert (sd.capabilities["edits"], sd.capabilities["max_input_images"]) == ("image_to_image", 1)


def test_streamed_reference_edits_and_generations_send_previews(client: OpenAI) -> None:
    original = noise((64, 64))
    events = list(
        client.images.edit(
            model="tiny-flux2",
            prompt="x",
            image=[_file(original), _file(noise((64, 64)))],
            mask=_file(mask_with_hole((64, 64))),
            stream=True,
            partial_images=2,
            extra_body={"num_inference_steps": 4},
        )
    )
    assert [event.type for event in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    for event in events:
        box = changed_box(original, png(base64.b64decode(event.b64_json)))
        assert box is None or inside(box, HOLE)  # previews keep the pixels too
    generated = list(
        client.images.generate(
            model="tiny-flux2",
            prompt="x",
            size="96x64",
            stream=True,
            partial_images=1,
            extra_body={"num_inference_steps": 3},
        )
    )
    assert [event.type for event in generated] == ["image_generation.partial_image", "image_generation.completed"]
    assert png(base64.b64decode(generated[-1].b64_json)).size == (96, 64)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's, on create_variation
def test_variations_and_seeds_hold_for_the_new_family(client: OpenAI) -> None:
    source = noise((64, 64))
    varied = _images(
        client.images.create_variation(model="tiny-flux2", image=_file(source), n=2, response_format="b64_json")
    )
    assert [image.size for image in varied] == [(64, 64), (64, 64)]
    assert varied[0].tobytes() != varied[1].tobytes()
    made = client.images.generate(
        model="tiny-flux2", prompt="a boat", size="64x64", n=2, response_format="b64_json", extra_body={"seed": 77}
    )
    assert [item.seed for item in made.data] == [77, 78]
    again = client.images.generate(
        model="tiny-flux2", prompt="a boat", size="64x64", n=2, response_format="b64_json", extra_body={"seed": 77}
    )
    assert [image.tobytes() for image in _images(again)] == [image.tobytes() for image in _images(made)]


def test_the_references_reach_the_model(client: OpenAI) -> None:
    """Same image, prompt and seed; only the reference differs, so the result does. (With random
    weights a reference moves few pixels, by a level or so; never none.)"""
    first = noise((64, 64))

    def edited(*references) -> bytes:
        response = client.images.edit(
            model="tiny-flux2",
            prompt="x",
            image=[_file(first), *map(_file, references)],
            extra_body={"seed": 3},
            response_format="b64_json",
        )
        return _images(response)[0].tobytes()

    alone, red, blue = edited(), edited(Image.new("RGB", (64, 64), "red")), edited(Image.new("RGB", (64, 64), "blue"))
    assert len({alone, red, blue}) == 3
    assert edited(Image.new("RGB", (64, 64), "red")) == red
