"""`background: "transparent"`: the subject cut out by the matting model, the rest alpha 0, in PNG
and WebP; JPEG refuses it; opaque and auto stay opaque. The built-in tiny matte is random weights
plus a centred ellipse, so its alpha is 255 in the middle and 0 at the corners, whatever the pixels."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from PIL import Image

from handlers.hosts.local import create_local_app
from tests.conftest import png_bytes

FAST = {"num_inference_steps": 1}


def decoded(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def assert_cut_out(image: Image.Image) -> None:
    """A real alpha channel: a fully opaque subject in the middle, a fully transparent background."""
    assert image.mode == "RGBA"
    alpha = image.getchannel("A")
    width, height = image.size
    assert alpha.getpixel((width // 2, height // 2)) == 255
    assert all(
        alpha.getpixel(corner) == 0 for corner in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1))
    )
    histogram = alpha.histogram()
    assert histogram[0] > width * height // 10 and histogram[255] > width * height // 10


def upload() -> io.BytesIO:
    data = io.BytesIO(png_bytes(Image.new("RGB", (64, 64), (30, 140, 200))))
    data.name = "photo.png"
    return data


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_a_transparent_generation_has_a_cut_out_subject(client: OpenAI, output_format: str) -> None:
    response = client.images.generate(
        model="tiny-sd",
        prompt="a red apple",
        size="64x64",
        n=2,
        background="transparent",
        output_format=output_format,
        response_format="b64_json",
        extra_body=FAST,
    )
    assert response.background == "transparent" and response.output_format == output_format
    for item in response.data:
        image = decoded(item.b64_json)
        assert image.format == output_format.upper()
        assert_cut_out(image)


def test_a_transparent_edit_has_a_cut_out_subject(client: OpenAI) -> None:
    response = client.images.edit(
        model="tiny-sd",
        image=upload(),
        prompt="a red apple",
        background="transparent",
        response_format="b64_json",
        extra_body=FAST,
    )
    assert response.background == "transparent"
    assert_cut_out(decoded(response.data[0].b64_json))


def test_jpeg_refuses_a_transparent_background_naming_it(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-sd", prompt="x", background="transparent", output_format="jpeg")
    assert caught.value.body["param"] == "background"
    assert "png" in caught.value.body["message"] and "webp" in caught.value.body["message"]


@pytest.mark.parametrize("background", ["opaque", "auto"])
def test_opaque_and_auto_stay_opaque(client: OpenAI, background: str) -> None:
    response = client.images.generate(
        model="tiny-sd", prompt="x", size="64x64", background=background, response_format="b64_json", extra_body=FAST
    )
    image = decoded(response.data[0].b64_json)
    assert response.background == "opaque"
    assert image.mode == "RGB" or image.getchannel("A").getextrema() == (255, 255)


def test_the_matte_runs_through_the_real_models_loading_path(cache_dir) -> None:
    """The tiny matte is loaded as BiRefNet is: its own code from its folder (trust_remote_code)."""
    from pipelines.contract.matting import MATTING_MODELS
    from pipelines.matting.matte import Matting

    matting = Matting(MATTING_MODELS["tiny-matte"], cache_dir)
    cut = matting.cut_out([Image.new("RGB", (96, 64), (255, 255, 255))] * 3, "cpu")
    assert [image.size for image in cut] == [(96, 64)] * 3
    for image in cut:
        assert_cut_out(image)
    assert type(matting._model).__module__.startswith("transformers_modules.")


def test_a_matting_model_not_pulled_is_a_503_naming_the_pull(make_settings) -> None:
    with TestClient(create_local_app(make_settings(matting_model="birefnet")), raise_server_exceptions=False) as api:
        response = api.post(
            "/v1/images/generations",
            json={
                "model": "tiny-sd",
                "prompt": "x",
                "size": "64x64",
                "background": "transparent",
                "num_inference_steps": 1,
            },
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert "imagegen pull birefnet" in response.json()["error"]["message"]


def test_remote_code_written_for_transformers_4_loads_too(cache_dir, tmp_path) -> None:
    """BiRefNet's code never calls `post_init()` (transformers 4 did not need it): the tiny matte's
    folder with that one call taken out, as such a model ships, still loads and mattes."""
    import shutil

    from pipelines.contract.matting import MATTING_MODELS, MattingSpec
    from pipelines.matting.matte import Matting, fetch_matting

    folder = tmp_path / "old-style"
    shutil.copytree(fetch_matting(MATTING_MODELS["tiny-matte"], cache_dir), folder)
    code = (folder / "tiny_matte.py").read_text()
    assert "        self.post_init()\n" in code
    (folder / "tiny_matte.py").write_text(code.replace("        self.post_init()\n", ""))
    matting = Matting(MattingSpec("old-style", f"dir:{folder}", 64, "tiny matte without post_init"), cache_dir)
    [image] = matting.cut_out([Image.new("RGB", (64, 64), (255, 255, 255))], "cpu")
    assert_cut_out(image)
