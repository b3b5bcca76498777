"""What the playground says is true: how many models are ready, the steps and guidance an image
was made with (a PNG, JPEG or WebP alike), and a "Copy as curl" that remakes the very image (its
seed included)."""

from __future__ import annotations

import base64
import io
import json
import re

import httpx
from PIL import ExifTags, Image
from playwright.sync_api import Page, expect

from tests import test_playground
from tests.conftest import API_KEY, Server
from tests.test_playground import decoded, fill, open_with_key

# The browser, its pages and the skip without Chromium: test_playground.py's.
browser, page, pytestmark = test_playground.browser, test_playground.page, test_playground.pytestmark


def test_the_status_counts_only_the_models_that_are_ready(page: Page, server: Server) -> None:
    open_with_key(page, server.url)
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(r"^\d+ models?: \d+ ready"))
    said = status.inner_text()
    models = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()["data"]
    ready_now = sum(model["state"] == "ready" for model in models)
    total, ready = (int(number) for number in re.match(r"(\d+) models?: (\d+) ready", said).groups())
    assert total == len(models) and ready <= ready_now, (said, [model["state"] for model in models])
    if ready < total:  # the rest are said to load on first use (or to be loading, or failed)
        assert re.search(r"load(s)? on first use|loading|failed", said), said


def test_parameters_show_the_values_used_and_curl_carries_the_seed_it_drew(page: Page, server: Server) -> None:
    open_with_key(page, server.url)
    fill(page, "a harbour at dawn", "64x64", steps="")  # no steps, no seed: the server picks both
    page.get_by_label("Seed").fill("")
    page.get_by_role("button", name="Generate").click()
    card = page.locator(".card[data-final]")
    expect(card).to_have_count(1)
    made = decoded(card.locator("img.card-image").get_attribute("src")).info["parameters"]
    steps, guidance = re.search(r"Steps: (\d+), CFG scale: ([\d.]+)", made).groups()
    expect(card.locator('dd[data-param="Steps"]')).to_have_text(steps)
    expect(card.locator('dd[data-param="Guidance"]')).to_have_text(guidance)

    seed = card.get_attribute("data-seed")
    card.get_by_role("button", name="Copy as curl").click()
    snippet = card.locator(".snippet")
    expect(snippet).to_be_visible()
    sent = json.loads(re.search(r"-d '(.*?)'", snippet.inner_text(), re.S).group(1))
    assert sent["seed"] == int(seed) and sent["prompt"] == "a harbour at dawn", sent

    # A JPEG or WebP says how it was made in its EXIF (as A1111's do), and the panel reads it there.
    for cards, output_format in enumerate(("jpeg", "webp"), start=2):
        page.get_by_label("Format").select_option(output_format)
        page.get_by_role("button", name="Generate").click()
        expect(page.locator(".card[data-final]")).to_have_count(cards)
        newest = page.locator(".card[data-final]").first
        src = newest.locator("img.card-image").get_attribute("src") or ""
        assert src.startswith(f"data:image/{output_format};base64,"), src[:40]
        exif = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).getexif().get_ifd(ExifTags.IFD.Exif)
        made = exif[ExifTags.Base.UserComment].removeprefix(b"UNICODE\0").decode("utf-16-be")
        steps, guidance = re.search(r"Steps: (\d+), CFG scale: ([\d.]+)", made).groups()
        expect(newest.locator('dd[data-param="Steps"]')).to_have_text(steps)
        expect(newest.locator('dd[data-param="Guidance"]')).to_have_text(guidance)
