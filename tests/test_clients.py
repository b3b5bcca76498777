"""The requests real clients send, byte for byte where it matters, against the real server.

Each shape comes from the client's own source (LibreChat's `image_gen_oai`/`image_edit_oai`,
Open WebUI's images router) as its HTTP library writes it; the Vercel AI SDK runs for real in
tests/js/ai_sdk.test.mjs. None of them sends `response_format` for a GPT image model name, and
all of them read `data[i].b64_json` then.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.conftest import API_KEY, Server, png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _b64_images(response: httpx.Response) -> list[Image.Image]:
    assert response.status_code == 200, response.text
    return [png(base64.b64decode(item["b64_json"])) for item in response.json()["data"]]


def _multipart(parts: list[tuple[str, str | tuple[str, bytes, str]]], *, boundary: str, text_type: bool) -> bytes:
    """A multipart body as a client's library writes it. `text_type`: aiohttp's habit of a
    Content-Type header on text parts, before the Content-Disposition."""
    body = b""
    for name, value in parts:
        body += f"--{boundary}\r\n".encode()
        if isinstance(value, str):
            if text_type:
                body += b"Content-Type: text/plain; charset=utf-8\r\n"
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        else:
            filename, data, content_type = value
            disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
            kind = f"Content-Type: {content_type}\r\n".encode()
            body += (kind + disposition if text_type else disposition + kind) + b"\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def _chunked(body: bytes) -> Iterator[bytes]:
    """No Content-Length: form-data over a stream (LibreChat with S3 storage) goes chunked."""
    for start in range(0, len(body), 16384):
        yield body[start : start + 16384]


# --- LibreChat ------------------------------------------------------------------------------


def test_librechat_image_gen_oai(server: Server) -> None:
    """openai@5.8.2 from LibreChat: compact JSON, `n` 1, auto quality and size, no response_format."""
    body = {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 1,
        "background": "auto",
        "output_format": "png",
        "quality": "auto",
        "size": "auto",
    }
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        headers={**AUTH, "Content-Type": "application/json"},
        content=json.dumps(body, separators=(",", ":")),
        timeout=60,
    )
    (image,) = _b64_images(response)
    assert image.size == (512, 512)  # auto: the model's own size
    assert response.json()["size"] == "512x512"


def test_librechat_image_gen_oai_as_jpeg(server: Server) -> None:
    body = {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 1,
        "background": "auto",
        "output_format": "jpeg",
        "output_compression": 100,
        "quality": "auto",
        "size": "auto",
    }
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        headers={**AUTH, "Content-Type": "application/json"},
        content=json.dumps(body, separators=(",", ":")),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["data"][0]["b64_json"])[:3] == b"\xff\xd8\xff"


def test_librechat_image_edit_oai_with_two_images(server: Server) -> None:
    """axios + form-data: model, prompt, quality, size, then `image[]` per image id; no mask, no n."""
    first, second = noise((96, 64)), noise((64, 64))
    boundary = "-" * 26 + secrets.token_hex(12)
    body = _multipart(
        [
            ("model", "gpt-image-1"),
            ("prompt", "put the cat from the second image on the sofa"),
            ("quality", "auto"),
            ("size", "auto"),
            ("image[]", ("img-0.png", png_bytes(first), "image/png")),
            ("image[]", ("img-1.png", png_bytes(second), "image/png")),
        ],
        boundary=boundary,
        text_type=False,
    )
    response = httpx.post(
        f"{server.url}/v1/images/edits",
        content=_chunked(body),
        timeout=60,
        headers={
            **AUTH,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json, text/plain, */*",
        },
    )
    (image,) = _b64_images(response)
    assert image.size == (96, 64)  # the first image's size


# --- Open WebUI -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "size"),
    [
        # IMAGE_GENERATION_MODEL matches ^gpt-image: no response_format, on purpose.
        ({"model": "gpt-image-1", "prompt": "a red fox \u00fc", "n": 1, "size": "512x512"}, (512, 512)),
        ({"model": "gpt-image-2.5-flare", "prompt": "a red fox", "n": 1, "size": "1536x864"}, (1536, 864)),
        # Any other name: response_format b64_json.
        (
            {"model": "dall-e-3", "prompt": "a red fox", "n": 1, "size": "512x512", "response_format": "b64_json"},
            (512, 512),
        ),
    ],
)
def test_open_webui_generation(server: Server, body: dict, size: tuple[int, int]) -> None:
    """aiohttp's json=: Python's default separators, non-ASCII escaped."""
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        content=json.dumps(body),
        timeout=60,
        headers={**AUTH, "Content-Type": "application/json", "User-Agent": "aiohttp/3.13.5"},
    )
    (image,) = _b64_images(response)
    assert image.size == size
    assert response.json()["size"] == f"{size[0]}x{size[1]}"


@pytest.mark.parametrize("model", ["gpt-image-1", ""])
def test_open_webui_chat_edit_with_the_last_two_images(server: Server, model: str) -> None:
    """The chat path sends every image of the last two messages as `image[]`, no mask; an unset
    IMAGE_EDIT_MODEL sends `model` empty, and then response_format b64_json."""
    first, second = noise((96, 64)), noise((64, 96))
    fields = [("model", model), ("prompt", "make the sky from the second image")]
    if not model:
        fields.append(("response_format", "b64_json"))
    boundary = secrets.token_hex(16)
    body = _multipart(
        [
            *fields,
            ("image[]", (f"{uuid.uuid4()}.png", png_bytes(first), "image/png")),
            ("image[]", (f"{uuid.uuid4()}.png", png_bytes(second), "image/png")),
        ],
        boundary=boundary,
        text_type=True,
    )
    response = httpx.post(
        f"{server.url}/v1/images/edits",
        content=body,
        timeout=60,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    (image,) = _b64_images(response)
    assert image.size == (96, 64)


# --- the Python SDK, as today's docs use it ---------------------------------------------------


def test_the_python_sdk_edit_of_several_images_with_a_mask_keeps_the_first_images_pixels(client) -> None:
    first = noise((96, 64))
    response = client.images.edit(
        model="gpt-image-2",
        prompt="the cat from the second image, on the sofa",
        image=[("sofa.png", png_bytes(first), "image/png"), ("cat.png", png_bytes(noise((64, 64))), "image/png")],
        mask=("mask.png", png_bytes(mask_with_hole(first.size)), "image/png"),
        input_fidelity="high",  # today's fields are taken, and ignored
    )
    result = png(base64.b64decode(response.data[0].b64_json))
    box = changed_box(first, result)
    assert box is not None and inside(box, HOLE)
    assert isinstance(response.data[0].model_extra["seed"], int)
