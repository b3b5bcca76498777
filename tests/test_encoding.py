"""What the server's PNGs are: standard files that Pillow and a real browser (Debian's Chromium)
decode to the same pixels, alpha included, still carrying how they were made; JPEGs and WebPs
carry it too."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from playwright.sync_api import Browser, sync_playwright

from pipelines.encoding import encode
from tests.conftest import png

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# The browser draws the PNG on a canvas and hands back its RGBA bytes.
DECODE = """async (url) => {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d", { colorSpace: "srgb" });
  context.drawImage(image, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("NO CHROMIUM FOUND: the browser decode did NOT run (install Debian's chromium package)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def browser_pixels(browser: Browser, data: bytes, size: tuple[int, int]) -> np.ndarray:
    page = browser.new_page()
    try:
        values = page.evaluate(DECODE, "data:image/png;base64," + base64.b64encode(data).decode())
    finally:
        page.close()
    return np.array(values, dtype=np.uint8).reshape(size[1], size[0], 4)


def test_a_batch_of_pngs_decodes_alike_in_pillow_and_chromium_and_says_how_it_was_made(
    api: TestClient, browser: Browser
) -> None:
    body = {
        "model": "tiny-sd",
        "prompt": "a lighthouse",
        "size": "64x64",
        "n": 2,
        "seed": 5,
        "response_format": "b64_json",
    }
    response = api.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    datas = [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]
    for seed, data in zip((5, 6), datas, strict=True):
        image = png(data)
        assert image.mode == "RGB" and image.size == (64, 64)
        assert f"Seed: {seed}," in image.info["parameters"] and image.info["parameters"].startswith("a lighthouse\n")
        seen = browser_pixels(browser, data, image.size)
        assert np.array_equal(seen[..., :3], np.asarray(image)) and (seen[..., 3] == 255).all()


def test_a_transparent_png_keeps_its_alpha_in_chromium(browser: Browser) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (48, 80, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[10:30, 20:60, 3] = 0  # a hole, as an edit's input has
    data = encode(Image.fromarray(pixels, "RGBA"), "png", None, "an edit")
    image = png(data)
    assert image.mode == "RGBA" and image.info["parameters"] == "an edit"
    assert np.array_equal(np.asarray(image), pixels)
    seen = browser_pixels(browser, data, image.size)
    opaque = pixels[..., 3] == 255
    assert np.array_equal(seen[..., 3], pixels[..., 3]) and np.array_equal(seen[opaque], pixels[opaque])


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_a_jpeg_or_webp_says_how_it_was_made_in_its_exif_as_a1111s_do(api: TestClient, output_format: str) -> None:
    body = {
        "model": "tiny-sd",
        "prompt": "a café at dusk",
        "size": "64x64",
        "seed": 4,
        "num_inference_steps": 3,
        "output_format": output_format,
        "response_format": "b64_json",
    }
    response = api.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    assert image.format == output_format.upper()
    # Signed (content credentials) after it was encoded: the comment is still there. A1111 writes
    # it with piexif's UserComment.dump(text, encoding="unicode"): "UNICODE\0", then UTF-16 BE.
    comment = image.getexif().get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment]
    assert comment.startswith(b"UNICODE\0"), comment[:16]
    assert comment[8:].decode("utf-16-be") == (
        "a café at dusk\nSteps: 3, CFG scale: 0.0, Seed: 4, Size: 64x64, Model: tiny-sd, Task: generate"
    )
