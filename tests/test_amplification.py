"""A small request cannot make the server do (or answer) a huge amount: uploads are counted and
measured from their headers before any is decoded, and what a request makes has a budget."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from handlers.hosts.local import create_local_app
from tests.conftest import png_bytes


def declared_png(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` in its header and has no pixels at all: decoding it
    fails, so an answer that is not 'damaged' shows that nothing was decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def one_image_model(make_settings) -> Iterator[TestClient]:
    with TestClient(create_local_app(make_settings(models="tiny-sd")), raise_server_exceptions=False) as api:
        yield api


@pytest.mark.parametrize("model", ["tiny-sd", "gpt-image-1.5", None])
def test_sixteen_images_to_a_one_image_model_are_refused_before_any_is_decoded(
    one_image_model: TestClient, model: str | None
) -> None:
    files = [("image[]", (f"{i}.png", declared_png(4096, 4096), "image/png")) for i in range(16)]
    data = {"prompt": "x"} | ({"model": model} if model else {})
    response = one_image_model.post("/v1/images/edits", data=data, files=files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("too_many_images", "image")
    assert "tiny-sd takes at most 1 input image; 16 were sent" in error["message"]


def test_the_pixels_uploads_declare_are_budgeted_before_decoding(one_image_model: TestClient) -> None:
    """Each is under the per-image limit (40 MP); together, image and mask, they are past the request's (64 MP)."""
    response = one_image_model.post(
        "/v1/images/edits",
        data={"prompt": "x"},
        files={
            "image": ("a.png", declared_png(6000, 6000), "image/png"),
            "mask": ("m.png", declared_png(6000, 6000), "image/png"),
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("image_too_large", "image")
    assert "72,000,000 pixels" in error["message"]


def test_an_edit_may_not_ask_for_more_output_than_the_budget(one_image_model: TestClient) -> None:
    """An edit's output is its input's size: three of a 12 MP photo is past four 3840x2160 images."""
    photo = png_bytes(Image.new("RGB", (4000, 3000), (90, 120, 200)))
    response = one_image_model.post(
        "/v1/images/edits", data={"prompt": "x", "n": "3"}, files={"image": ("a.png", photo, "image/png")}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("output_too_large", "size")
    assert "3 images of 4000x3000" in error["message"]
