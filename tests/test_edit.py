"""Edits as OpenAI defines them: alpha = 0 marks the area; everything else comes back byte-identical."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from PIL import Image, ImageChops

from handlers.hosts.local import create_local_app
from pipelines.contract.catalog import ModelSpec, Task
from pipelines.contract.served import Need, ServedModels
from tests.conftest import API_KEY, Server, png, png_bytes

HOLE = (24, 16, 56, 40)  # left, top, right, bottom: the area to edit


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A photo-like stand-in: every pixel different, so a changed pixel cannot hide."""
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))


def mask_with_hole(size: tuple[int, int], hole: tuple[int, int, int, int] = HOLE) -> Image.Image:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), hole)
    return mask


def changed_box(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    """The bounding box of every pixel that differs (None: identical)."""
    # alpha_only=False: by default an RGBA image's bbox looks at its alpha channel alone.
    return ImageChops.difference(before.convert("RGBA"), after.convert("RGBA")).getbbox(alpha_only=False)


def inside(box: tuple[int, int, int, int], area: tuple[int, int, int, int]) -> bool:
    return area[0] <= box[0] and area[1] <= box[1] and box[2] <= area[2] and box[3] <= area[3]


def jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def edit_b64(client: OpenAI, **kwargs) -> list[Image.Image]:
    kwargs.setdefault("prompt", "a red door")
    response = client.images.edit(response_format="b64_json", **kwargs)
    return [png(base64.b64decode(item.b64_json)) for item in response.data]


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl", "tiny-flux", "tiny-flux2"])
def test_a_mask_edits_only_its_transparent_area(client: OpenAI, model: str) -> None:
    original = noise((96, 64))
    (result,) = edit_b64(
        client,
        model=model,
        image=("photo.png", png_bytes(original), "image/png"),
        mask=("mask.png", png_bytes(mask_with_hole(original.size)), "image/png"),
    )
    assert result.size == original.size
    box = changed_box(original, result)
    assert box is not None, "the masked area was not repainted"
    assert inside(box, HOLE), f"pixels outside the mask changed: {box}"


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-flux", "tiny-flux2"])
def test_without_a_mask_the_images_own_transparency_is_the_area(client: OpenAI, model: str) -> None:
    original = noise((100, 60), "RGBA")  # an odd size: rendered at the model's multiple, resized back
    alpha = Image.new("L", original.size, 255)
    alpha.paste(0, HOLE)
    original.putalpha(alpha)
    (result,) = edit_b64(client, model=model, image=("photo.png", png_bytes(original), "image/png"), n=1)
    assert result.size == (100, 60)
    assert result.mode == "RGBA"
    box = changed_box(original, result)
    assert box is not None and inside(box, HOLE)
    assert result.crop(HOLE).getchannel("A").getextrema() == (255, 255)  # the hole is filled, opaque


def test_with_neither_the_whole_image_is_edited_at_its_own_size(client: OpenAI) -> None:
    original = noise((80, 48))
    results = edit_b64(client, model="tiny-sdxl", image=("photo.png", png_bytes(original), "image/png"), n=2)
    assert [image.size for image in results] == [(80, 48), (80, 48)]
    box = changed_box(original, results[0])
    assert box is not None and box[2] - box[0] > 40 and box[3] - box[1] > 24
    assert results[0].tobytes() != results[1].tobytes()


def test_a_list_of_one_image_arrives_as_image_brackets_and_works(client: OpenAI) -> None:
    original = noise((64, 64))
    (result,) = edit_b64(
        client,
        model="tiny-sd",
        image=[("photo.png", png_bytes(original), "image/png")],
        mask=("mask.png", png_bytes(mask_with_hole((64, 64), (0, 0, 32, 32))), "image/png"),
    )
    box = changed_box(original, result)
    assert box is not None and inside(box, (0, 0, 32, 32))


def test_size_sets_the_output_size(client: OpenAI) -> None:
    original = noise((64, 64))
    (result,) = edit_b64(client, model="tiny-sd", size="256x256", image=("photo.png", png_bytes(original), "image/png"))
    assert result.size == (256, 256)


def test_an_edit_url_is_fetchable(client: OpenAI) -> None:
    response = client.images.edit(
        model="tiny-sd", prompt="a red door", image=("photo.jpg", jpeg_bytes(noise((64, 64))), "image/jpeg")
    )
    fetched = httpx.get(response.data[0].url)
    assert fetched.status_code == 200 and png(fetched.content).size == (64, 64)


def test_a_mask_of_another_size_is_a_400_naming_mask(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="tiny-sd",
            prompt="x",
            image=("a.png", png_bytes(noise((64, 64))), "image/png"),
            mask=("m.png", png_bytes(mask_with_hole((96, 64))), "image/png"),
        )
    assert caught.value.body["param"] == "mask"
    assert "96x64" in caught.value.body["message"] and "64x64" in caught.value.body["message"]


def test_a_mask_without_alpha_is_a_400_naming_mask(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="tiny-sd",
            prompt="x",
            image=("a.png", png_bytes(noise((64, 64))), "image/png"),
            mask=("m.png", png_bytes(Image.new("L", (64, 64), 255)), "image/png"),
        )
    assert caught.value.body["param"] == "mask"
    assert "alpha" in caught.value.body["message"]


@pytest.mark.parametrize("data", [b"", b"not an image at all", png_bytes(noise((8, 8)))[:40]])
def test_an_unreadable_image_is_a_400_naming_image(client: OpenAI, data: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="tiny-sd", prompt="x", image=("a.png", data, "image/png"))
    assert caught.value.body["param"] == "image"


def test_form_fields_arrive_as_text_and_are_validated(server: Server) -> None:
    files = {"image": ("a.png", png_bytes(noise((64, 64))), "image/png")}
    auth = {"Authorization": f"Bearer {API_KEY}"}
    bad = httpx.post(
        f"{server.url}/v1/images/edits",
        headers=auth,
        files=files,
        data={"prompt": "x", "model": "tiny-sd", "n": "three"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "n"
    missing = httpx.post(f"{server.url}/v1/images/edits", headers=auth, data={"prompt": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "image"
    good = httpx.post(
        f"{server.url}/v1/images/edits",
        headers=auth,
        files=files,
        data={
            "prompt": "x",
            "model": "tiny-sd",
            "n": "2",
            "response_format": "b64_json",
            "seed": "5",
            "num_inference_steps": "2",
        },
        timeout=60,
    )
    assert good.status_code == 200 and len(good.json()["data"]) == 2


def test_two_images_are_refused_naming_the_limit(client: OpenAI) -> None:
    image = ("a.png", png_bytes(noise((64, 64))), "image/png")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="tiny-sd", prompt="x", image=[image, image])
    assert caught.value.body["param"] == "image"
    assert "at most 1 input image" in caught.value.body["message"]


@dataclass(frozen=True)
class CountingServed(ServedModels):
    """The real served models, noting each lookup of a model by name."""

    lookups: list[tuple[str | None, tuple[Need, ...], Task | None]] = field(default_factory=list, compare=False)

    def get(self, name: str | None, needs: Collection[Need] = (), task: Task | None = None) -> ModelSpec | None:
        self.lookups.append((name, tuple(needs), task))
        return super().get(name, needs, task)


@pytest.mark.parametrize("model", ["tiny-sd", "gpt-image-1"])
def test_an_edit_resolves_its_model_once_knowing_its_images(make_settings, model: str) -> None:
    """One lookup per edit, made once the images are read: what an OpenAI name stands for depends
    on them (here: one opaque image, no mask, so the edit needs a model that follows instructions)."""
    app = create_local_app(make_settings())
    real = app.state.services.served
    served = CountingServed(real.specs, real.aliases, real.loras)
    app.state.services = replace(app.state.services, served=served)
    with TestClient(app) as api:
        response = api.post(
            "/v1/images/edits",
            files={"image": ("p.png", png_bytes(noise((64, 64))), "image/png")},
            data={"model": model, "prompt": "a red door", "num_inference_steps": "1", "response_format": "b64_json"},
        )
    assert response.status_code == 200, response.text
    assert served.lookups == [(model, ("instructions",), "edit")]
