"""The playground in a real browser (Debian's Chromium, driven by Playwright) against the real server."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from handlers.routes.playground import ASSETS, PAGE
from tests.conftest import API_KEY, Server, png_bytes

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="NO CHROMIUM FOUND (neither `chromium` on PATH nor /usr/bin/chromium): the playground's browser tests "
    "did NOT run. Install Debian's chromium package (`.ci/run` does) to run them.",
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000  # the first request on a model also builds its pipeline


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()
    finally:
        expect.set_options(timeout=None)  # back to Playwright's default


@contextlib.contextmanager
def new_page(browser: Browser, **options: Any) -> Iterator[Page]:
    """A page in a fresh context (so a fresh localStorage) that fails the test if its scripts throw."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as page:
        yield page


def open_with_key(page: Page, url: str) -> None:
    """Open the page; the server answers 401, so the page asks for the key: give it."""
    page.goto(url)
    key = page.get_by_label("API key")
    expect(key).to_be_visible()
    key.fill(API_KEY)
    page.get_by_role("button", name="Save key").click()
    expect(page.get_by_label("Model", exact=True)).to_contain_text("tiny-sd")
    assert page.evaluate("localStorage.getItem('imagegen.apiKey')") == API_KEY


def fill(page: Page, prompt: str, size: str, steps: str = "2") -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Model", exact=True).select_option("tiny-sd")
    if size == "auto":
        page.get_by_label("Size", exact=True).select_option("auto")
    else:
        page.get_by_label("Size", exact=True).select_option("custom")
        page.get_by_label("Custom size (WxH)").fill(size)
    page.get_by_label("Steps").fill(steps)


def decoded(src: str | None) -> Image.Image:
    assert src is not None and src.startswith("data:image/png;base64,"), src
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    image.load()
    return image


def test_generate_streams_previews_then_the_final_image_and_its_seed(page: Page, server: Server) -> None:
    open_with_key(page, server.url)
    fill(page, "a lighthouse at dusk", "64x64", steps="3")
    # Record every picture the gallery shows, in order, to see the previews come before the final.
    # Each change's old value, then the last one: an observer's callback runs later than the
    # change, when the attribute may have changed again (the tiny models are quick).
    page.evaluate("""() => {
        window.shown = [];
        new MutationObserver((changes) => changes.forEach((c) => window.shown.push(c.oldValue)))
            .observe(document.getElementById("gallery"),
                     {subtree: true, attributeFilter: ["alt"], attributeOldValue: true});
    }""")
    page.get_by_role("button", name="Generate").click()

    card = page.locator(".card[data-final]")
    expect(card).to_have_count(1)
    final = card.locator("img.card-image").get_attribute("alt")
    shown = [alt for alt in page.evaluate("window.shown") if alt] + [final]
    assert shown[:2] == ["Preview 1 of image 1", "Preview 2 of image 1"], shown
    assert shown[-1].startswith("Result: a lighthouse at dusk"), shown
    image = card.locator("img.card-image")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 64]
    assert decoded(image.get_attribute("src")).size == (64, 64)
    seed = card.get_attribute("data-seed")
    assert seed is not None and seed.isdigit()
    expect(card.locator(".card-state")).to_contain_text(f"Seed {seed}")
    expect(card.locator(".card-state")).to_contain_text(re.compile(r"\d+\.\d\d s"))  # the time it took
    expect(page.locator("#status")).to_contain_text("Done: 1 image")
    page.screenshot(path="/tmp/playground.png", full_page=True)


# Playwright does not report a request body built of Blobs, so the page's fetch is watched instead:
# every multipart form it sends is kept, and read back as {name: bytes} after the request.
_WATCH_FORMS = """() => {
    window.sentForms = [];
    const send = window.fetch;
    window.fetch = (url, init) => {
        if (init?.body instanceof FormData) window.sentForms.push(init.body);
        return send(url, init);
    };
}"""
_READ_FORM = """async () => {
    const out = {};
    for (const [name, value] of window.sentForms[0].entries()) {
        const bytes = typeof value === "string" ? new TextEncoder().encode(value)
            : new Uint8Array(await value.arrayBuffer());
        out[name] = Array.from(bytes, (byte) => String.fromCharCode(byte)).join("");
    }
    return Object.fromEntries(Object.entries(out).map(([name, text]) => [name, btoa(text)]));
}"""


def test_a_painted_mask_edits_only_the_painted_area(page: Page, server: Server, tmp_path: Path) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(Image.fromarray(pixels)))
    open_with_key(page, server.url)
    page.get_by_label("Edit", exact=True).check()
    fill(page, "a red door", "auto")
    page.get_by_label("Choose or drop images").set_input_files(photo)
    canvas = page.get_by_label("Mask: paint over the area to edit")
    expect(canvas).to_have_js_property("width", 96)  # the mask is the image's own size
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    expect(page.locator("#edit-kind")).to_contain_text("Masked edit")

    page.evaluate(_WATCH_FORMS)
    page.get_by_role("button", name="Edit", exact=True).click()
    card = page.locator(".card[data-final]")
    expect(card).to_have_count(1)

    parts = {name: base64.b64decode(data) for name, data in page.evaluate(_READ_FORM).items()}
    assert parts["image"] == photo.read_bytes() and parts["prompt"] == b"a red door"
    mask = np.asarray(Image.open(io.BytesIO(parts["mask"])).convert("RGBA"))[..., 3]
    assert mask.shape == (64, 96) and set(np.unique(mask)) == {0, 255}
    rows, cols = np.nonzero(mask == 0)  # the painted stroke: a band across the middle
    assert 25 <= cols.min() < cols.max() <= 62 and 24 <= rows.min() <= rows.max() <= 40, (rows, cols)

    result = np.asarray(decoded(card.locator("img.card-image").get_attribute("src")).convert("RGB"))
    kept = mask == 255
    assert result.shape == pixels.shape
    assert np.array_equal(result[kept], pixels[kept])  # byte-identical outside the painted area
    assert not np.array_equal(result[~kept], pixels[~kept])  # and the painted area was edited


def test_a_bad_size_shows_the_servers_message_under_the_size_field(page: Page, server: Server) -> None:
    expected = httpx.post(
        f"{server.url}/v1/images/generations",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"model": "tiny-sd", "prompt": "x", "size": "70x70"},
    ).json()["error"]
    assert expected["param"] == "size"
    open_with_key(page, server.url)
    fill(page, "a lighthouse", "70x70")
    page.get_by_role("button", name="Generate").click()

    error = page.locator("#size-error")
    expect(error).to_have_text(expected["message"])
    custom = page.get_by_label("Custom size (WxH)")
    expect(custom).to_have_attribute("aria-invalid", "true")
    assert "size-error" in (custom.get_attribute("aria-describedby") or "").split()
    expect(page.locator("#top-error")).to_be_hidden()
    expect(page.locator(".card")).to_have_count(0)


_NAMELESS = """() => [...document.querySelectorAll("input, select, textarea")].filter((field) => {
    const labelled = [...field.labels].some((label) => label.textContent.trim());
    const named = (field.getAttribute("aria-label") || "").trim();
    const by = (field.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
        .some((id) => document.getElementById(id)?.textContent.trim());
    return !(labelled || named || by);
}).map((field) => field.outerHTML)"""


def test_a_phone_width_page_has_no_sideways_scroll_and_labelled_inputs(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    with new_page(browser, viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True) as page:
        open_with_key(page, server.url)
        photo = tmp_path / "wide.png"
        photo.write_bytes(png_bytes(Image.new("RGB", (320, 128), "teal")))
        for mode in ("Generate", "Edit"):
            page.get_by_label(mode, exact=True).check()
            if mode == "Edit":
                page.get_by_label("Choose or drop images").set_input_files(photo)
                expect(page.get_by_label("Mask: paint over the area to edit")).to_be_visible()
            scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert scroll[0] <= scroll[1] == 375, f"{mode}: the page is {scroll[0]} px wide at 375 px"
        assert page.evaluate(_NAMELESS) == []
        for field in page.locator("input, select, textarea, button").all():
            if field.is_visible():
                expect(field).to_have_accessible_name(re.compile(r"\w"))


def _through_a_proxy(server: Server, prefix: str) -> Callable[[Route], None]:
    """A reverse proxy in the browser: /prefix/... is the server's /..., as behind nginx."""

    def forward(route: Route) -> None:
        path = route.request.url.removeprefix(prefix)
        route.fulfill(response=route.fetch(url=f"{server.url}/{path}"))

    return forward


def test_the_page_works_under_a_path_prefix(page: Page, server: Server) -> None:
    prefix = "http://proxy.test/imagegen/"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.route("http://proxy.test/**", _through_a_proxy(server, prefix))
    open_with_key(page, prefix)
    fill(page, "a lighthouse", "64x64", steps="1")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".card[data-final]")).to_have_count(1)
    outside = [url for url in requested if not url.startswith((prefix, "data:", "blob:"))]
    assert not outside, outside
    assert f"{prefix}playground/playground.js" in requested and f"{prefix}v1/images/generations" in requested


def test_the_page_uses_only_relative_urls_and_serves_its_own_files() -> None:
    html = (PAGE / "index.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not url.startswith(("/", "http:", "https:")), url
    for name in (path.name for path in PAGE.iterdir() if path.suffix == ".js"):
        source = (PAGE / name).read_text()
        assert not re.findall(r"""["'`]/(?!/)""", source), f"{name} has a string starting with /"
        assert "location.origin" not in source and "://" not in source, name
        assert all(path.startswith("./") for path in re.findall(r'from "([^"]+)"', source)), name
    assert {path.name for path in PAGE.iterdir()} == {"index.html", *ASSETS}  # every file is served, by name


def test_loras_are_offered_for_the_models_that_take_them_and_reach_the_image(
    browser: Browser, cache_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import start_server, stop_server
    from tests.test_lora import _save_lora

    _save_lora("sd", cache_dir, tmp_path / "loras" / "sd" / "ink.safetensors", seed=1)  # for the SD family only
    process, url = start_server(
        {
            "IMAGEGEN_CACHE_DIR": str(cache_dir),
            "IMAGEGEN_STORAGE_DIR": str(tmp_path / "img"),
            "IMAGEGEN_API_KEYS": API_KEY,
            "IMAGEGEN_LORA_DIR": str(tmp_path / "loras"),
        },
        tmp_path / "server.log",
    )
    try:
        with new_page(browser) as page:
            open_with_key(page, url)
            page.get_by_label("Model", exact=True).select_option("tiny-flux")
            expect(page.get_by_label("LoRAs")).to_be_hidden()
            fill(page, "a harbour", "64x64")
            expect(page.locator("#lora-info")).to_contain_text("tiny-sd takes: ink")
            page.get_by_label("LoRAs").fill("ink:1")
            page.get_by_label("Seed").fill("5")
            page.get_by_role("button", name="Generate").click()
            card = page.locator(".card[data-final]")
            expect(card).to_have_count(1)
            shown = decoded(card.locator("img.card-image").get_attribute("src")).convert("RGB")

        def made(**extra: Any) -> Image.Image:
            response = httpx.post(
                f"{url}/v1/images/generations",
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
                json={
                    "model": "tiny-sd",
                    "prompt": "a harbour",
                    "size": "64x64",
                    "num_inference_steps": 2,
                    "seed": 5,
                    "response_format": "b64_json",
                    **extra,
                },
            )
            return Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"]))).convert("RGB")

        assert shown.tobytes() == made(lora=[{"name": "ink", "scale": 1}]).tobytes()
        assert shown.tobytes() != made().tobytes()
    finally:
        stop_server(process)


def test_a_long_request_runs_as_a_job_with_its_progress_shown_and_cancels_on_the_server(
    page: Page, server: Server
) -> None:
    open_with_key(page, server.url)
    page.evaluate("""() => {
        window.statuses = [];
        new MutationObserver(() => window.statuses.push(document.getElementById("status").textContent))
            .observe(document.getElementById("status"), {childList: true, characterData: true, subtree: true});
    }""")
    fill(page, "a lighthouse as a job", "128x128", steps="20")
    page.get_by_label("Run as a job").check()
    page.get_by_role("button", name="Generate").click()
    card = page.locator(".card[data-final]")
    expect(card).to_have_count(1)
    assert decoded(card.locator("img.card-image").get_attribute("src")).size == (128, 128)
    expect(page.locator("#status")).to_contain_text("Done: job imgjob_")
    statuses = page.evaluate("window.statuses")
    assert any(re.search(r"Job imgjob_\S+: (queued|in progress), step \d+ of 20\.", text) for text in statuses), (
        statuses
    )

    fill(page, "a long job, cancelled", "512x512", steps="50")  # long enough to be cancelled while it runs
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#job-progress")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("in progress")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("Cancelled.")
    headers = {"authorization": f"Bearer {API_KEY}"}
    deadline = 60
    for _ in range(deadline * 10):
        newest = httpx.get(f"{server.url}/v1/images/jobs", headers=headers).json()["data"][0]
        if newest["status"] == "cancelled":
            break
        page.wait_for_timeout(100)
    assert newest["status"] == "cancelled" and newest["progress"]["step"] < 50, newest
