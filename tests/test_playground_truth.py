"""What the playground says is true: how many models are ready, the steps and guidance an image
was made with, and a "Copy as curl" that remakes the very image (its seed included)."""

from __future__ import annotations

import json
import re

import httpx
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
