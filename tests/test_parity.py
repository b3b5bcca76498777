"""OpenAI Images parity: streaming, variations, output formats and the fields responses echo."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import API_KEY, Server, png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise

# --- streaming --------------------------------------------------------------------------------


def test_a_streamed_generation_sends_partials_then_the_image(client: OpenAI) -> None:
    events = list(
        client.images.generate(
            model="tiny-sd",
            prompt="a harbour at dawn",
            size="128x128",
            stream=True,
            partial_images=2,
            output_format="png",
            extra_body={"num_inference_steps": 6, "seed": 11},
        )
    )
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for event in events:
        assert event.size == "128x128" and event.output_format == "png" and event.background == "auto"
        assert abs(event.created_at - time.time()) < 120
    partial = png(base64.b64decode(events[0].b64_json))
    assert partial.size == (64, 64)  # previews are decoded at half size: cheap
    final = png(base64.b64decode(events[-1].b64_json))
    assert final.size == (128, 128)
    # The streamed image is the image: the same request without streaming gives the same pixels.
    plain = client.images.generate(
        model="tiny-sd",
        prompt="a harbour at dawn",
        size="128x128",
        response_format="b64_json",
        extra_body={"num_inference_steps": 6, "seed": 11},
    )
    # (Pixels, not file bytes: each image's content credentials say when it was signed.)
    assert png(base64.b64decode(plain.data[0].b64_json)).tobytes() == final.tobytes()
    # Partials come from the real intermediate latents: they differ from each other.
    assert events[0].b64_json != events[1].b64_json


def test_each_of_n_streamed_images_completes(client: OpenAI) -> None:
    events = list(
        client.images.generate(
            model="tiny-flux",
            prompt="x",
            size="64x64",
            n=2,
            stream=True,
            partial_images=1,
            extra_body={"num_inference_steps": 4},
        )
    )
    completed = [e for e in events if e.type == "image_generation.completed"]
    partials = [e for e in events if e.type == "image_generation.partial_image"]
    assert len(completed) == 2 and len(partials) == 2
    assert sorted(e.model_extra["image_index"] for e in completed) == [0, 1]
    assert (
        png(base64.b64decode(completed[0].b64_json)).tobytes() != png(base64.b64decode(completed[1].b64_json)).tobytes()
    )


def test_partial_images_zero_streams_just_the_image(client: OpenAI) -> None:
    events = list(client.images.generate(model="tiny-sdxl", prompt="x", size="64x64", stream=True, partial_images=0))
    assert [e.type for e in events] == ["image_generation.completed"]


def test_a_streamed_edit_keeps_the_unmasked_pixels(client: OpenAI) -> None:
    original = noise((96, 64))
    events = list(
        client.images.edit(
            model="tiny-sd",
            prompt="a red door",
            image=("photo.png", png_bytes(original), "image/png"),
            mask=("mask.png", png_bytes(mask_with_hole(original.size)), "image/png"),
            stream=True,
            partial_images=2,
            extra_body={"num_inference_steps": 6},
        )
    )
    assert [e.type for e in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    final = png(base64.b64decode(events[-1].b64_json))
    box = changed_box(original, final)
    assert box is not None and inside(box, HOLE)


def test_a_failure_before_the_first_event_is_a_plain_http_error(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        list(client.images.generate(model="no-such-model", prompt="x", stream=True))
    with pytest.raises(openai.BadRequestError) as caught:
        list(client.images.generate(model="tiny-sd", prompt="x", stream=True, partial_images=4))
    assert caught.value.body["param"] == "partial_images"


def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(make_settings) -> None:
    """A fault injected into the real pipeline's VAE: the preview decodes, the final decode fails."""
    from fastapi.testclient import TestClient

    from handlers.hosts.local import create_local_app

    app = create_local_app(make_settings(models="tiny-sd"))
    with TestClient(app, raise_server_exceptions=False) as api:
        vae = app.state.services.engine.worker.models.get("tiny-sd").pipe.vae
        real_decode, calls = vae.decode, []

        def decode_then_fail(*args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("injected fault")
            return real_decode(*args, **kwargs)

        vae.decode = decode_then_fail
        sdk = OpenAI(api_key="x", base_url="http://testserver/v1", http_client=api, max_retries=0)
        stream = sdk.images.generate(
            model="tiny-sd",
            prompt="x",
            size="64x64",
            stream=True,
            partial_images=1,
            extra_body={"num_inference_steps": 4},
        )
        received = []
        with pytest.raises(openai.APIError) as caught:
            for event in stream:
                received.append(event.type)
        assert received == ["image_generation.partial_image"]
        assert "tiny-sd failed" in caught.value.message and "injected" not in caught.value.message
        # The worker recovers: the next request works.
        vae.decode = real_decode
        ok = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "size": "64x64"})
        assert ok.status_code == 200


def test_a_client_that_goes_away_stops_the_remaining_steps(server: Server) -> None:
    request = {
        "model": "tiny-sdxl",
        "prompt": "a long one",
        "size": "1024x1024",
        "stream": True,
        "partial_images": 3,
        "num_inference_steps": 50,
    }
    with httpx.stream(
        "POST",
        f"{server.url}/v1/images/generations",
        json=request,
        timeout=60,
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                break  # one preview is enough: hang up
    deadline = time.monotonic() + 30
    while "stopped tiny-sdxl after step" not in server.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in server.log_path.read_text().splitlines() if "stopped tiny-sdxl after step" in line)
    step = int(line.split("after step ")[1].split()[0])
    assert step < 50


# --- variations -------------------------------------------------------------------------------
# The SDK marks create_variation deprecated (and warns); clients still call it.
variation = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@variation
def test_variations_are_conditioned_on_the_image(client: OpenAI) -> None:
    source = Image.new("RGB", (96, 64), (200, 30, 30))
    source.paste((20, 20, 220), (48, 0, 96, 64))  # left red, right blue
    response = client.images.create_variation(
        model="tiny-sd", image=("in.png", png_bytes(source), "image/png"), n=2, response_format="b64_json"
    )
    variations = [png(base64.b64decode(item.b64_json)) for item in response.data]
    assert [v.size for v in variations] == [(96, 64), (96, 64)]
    assert variations[0].tobytes() != variations[1].tobytes()
    assert variations[0].tobytes() != source.tobytes()
    assert response.data[0].revised_prompt is None


@variation
def test_variations_take_size_and_url(client: OpenAI) -> None:
    response = client.images.create_variation(
        model="tiny-flux", image=("in.png", png_bytes(noise((64, 64))), "image/png"), size="256x256"
    )
    assert png(httpx.get(response.data[0].url).content).size == (256, 256)


@variation
def test_variations_of_a_non_image_are_a_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.create_variation(model="tiny-sd", image=("in.png", b"nope", "image/png"))
    assert caught.value.body["param"] == "image"


# --- formats and echoed fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_format", "pil_format", "content_type"),
    [("png", "PNG", "image/png"), ("jpeg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
def test_output_formats_in_b64_and_behind_urls(
    client: OpenAI, output_format: str, pil_format: str, content_type: str
) -> None:
    b64 = client.images.generate(
        model="tiny-sd", prompt="x", size="64x64", output_format=output_format, response_format="b64_json"
    )
    assert Image.open(io.BytesIO(base64.b64decode(b64.data[0].b64_json))).format == pil_format
    assert b64.output_format == output_format
    url = client.images.generate(model="tiny-sd", prompt="x", size="64x64", output_format=output_format).data[0].url
    assert url.endswith(f".{output_format}")
    fetched = httpx.get(url)
    assert fetched.headers["content-type"] == content_type
    assert Image.open(io.BytesIO(fetched.content)).format == pil_format


def test_output_compression_trades_bytes_for_quality(client: OpenAI) -> None:
    def size_at(compression: int) -> int:
        response = client.images.generate(
            model="tiny-sd",
            prompt="x",
            size="256x256",
            output_format="jpeg",
            output_compression=compression,
            response_format="b64_json",
            extra_body={"seed": 1},
        )
        return len(base64.b64decode(response.data[0].b64_json))

    assert size_at(10) < size_at(95)
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-sd", prompt="x", output_compression=101)
    assert caught.value.body["param"] == "output_compression"


def test_the_response_echoes_what_the_images_were_made_with(client: OpenAI) -> None:
    response = client.images.generate(
        model="tiny-sd",
        prompt="x",
        size="auto",
        quality="high",
        background="opaque",
        moderation="low",
        user="user-42",
        response_format="b64_json",
    )
    assert response.size == "512x512"  # auto: the model's default size
    assert response.quality == "high" and response.background == "opaque" and response.output_format == "png"
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens  # complete
    assert png(base64.b64decode(response.data[0].b64_json)).size == (512, 512)


@pytest.mark.parametrize("quality", ["low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"])
def test_every_quality_tier_is_accepted(client: OpenAI, quality: str) -> None:
    response = client.images.generate(
        model="tiny-sd", prompt="x", size="64x64", quality=quality, response_format="b64_json"
    )
    assert png(base64.b64decode(response.data[0].b64_json)).size == (64, 64)


def test_the_schema_documents_every_endpoint_and_extension(api) -> None:
    schema = api.get("/openapi.json").json()
    assert {
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/images/variations",
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/temp-images/{image_id}",
        "/health",
    } <= set(schema["paths"])
    generation = schema["components"]["schemas"]["ImageGenerationRequest"]["properties"]
    for field in (
        "seed",
        "negative_prompt",
        "num_inference_steps",
        "guidance_scale",
        "stream",
        "partial_images",
        "output_format",
        "output_compression",
        "background",
    ):
        assert generation[field].get("description"), field
    edit = schema["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"image", "mask", "prompt", "stream"} <= set(edit["properties"])
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert '"422"' not in json.dumps(schema)  # validation errors are 400s here


def test_lossless_webp_keeps_the_unedited_pixels_too(client: OpenAI) -> None:
    original = noise((96, 64))
    response = client.images.edit(
        model="tiny-sd",
        prompt="a red door",
        image=("photo.png", png_bytes(original), "image/png"),
        mask=("mask.png", png_bytes(mask_with_hole(original.size)), "image/png"),
        output_format="webp",
        output_compression=100,
        response_format="b64_json",
    )
    result = Image.open(io.BytesIO(base64.b64decode(response.data[0].b64_json)))
    assert result.format == "WEBP"
    box = changed_box(original, result)
    assert box is not None and inside(box, HOLE)
