"""OpenAI's Images API as it is today: its model names, defaults, values and fields."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from handlers.hosts.local import create_local_app
from handlers.images.resolve import QUALITY_TIER
from pipelines.contract.catalog import CATALOG
from tests.conftest import png, png_bytes
from tests.test_edit import noise

SMALL = {"prompt": "a lighthouse", "size": "64x64"}


@pytest.mark.parametrize(
    ("model", "answer"),
    [
        ("gpt-image-1", "b64_json"),
        ("gpt-image-2.5-sunburst-2026-09-08", "b64_json"),
        ("chatgpt-image-latest", "b64_json"),
        ("GPT-Image-3", "b64_json"),
        ("dall-e-3", "url"),
        ("dall-e-2", "url"),
        ("tiny-sd", "url"),
        (None, "url"),
    ],
)
def test_without_response_format_the_answer_follows_the_model_name(
    api: TestClient, model: str | None, answer: str
) -> None:
    body = {**SMALL, **({"model": model} if model else {})}
    (item,) = api.post("/v1/images/generations", json=body).json()["data"]
    assert answer in item and ("url" if answer == "b64_json" else "b64_json") not in item


def test_an_explicit_response_format_always_wins(api: TestClient) -> None:
    (item,) = api.post(
        "/v1/images/generations", json={**SMALL, "model": "gpt-image-2", "response_format": "url"}
    ).json()["data"]
    assert api.get(item["url"]).status_code == 200
    (item,) = api.post(
        "/v1/images/generations", json={**SMALL, "model": "dall-e-3", "response_format": "b64_json"}
    ).json()["data"]
    assert png(base64.b64decode(item["b64_json"])).size == (64, 64)


def test_one_setting_sets_the_server_wide_default(make_settings) -> None:
    with TestClient(create_local_app(make_settings(models="tiny-sd", response_format="b64_json"))) as api:
        (item,) = api.post("/v1/images/generations", json={**SMALL, "model": "dall-e-3"}).json()["data"]
        assert "b64_json" in item
    with TestClient(create_local_app(make_settings(models="tiny-sd", response_format="url"))) as api:
        (item,) = api.post("/v1/images/generations", json={**SMALL, "model": "gpt-image-2"}).json()["data"]
        assert "url" in item


def test_todays_fields_are_taken_and_ignored(api: TestClient) -> None:
    body = {
        **SMALL,
        "model": "gpt-image-2.5-flare",
        "safety_identifier": "user-hash",
        "complexity": "high",
        "input_fidelity": "high",
        "moderation": "low",
        "quality": "max",
        "frame_count": 9,
    }
    response = api.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["quality"] == "max"


def test_quality_never_takes_fewer_steps_as_it_rises() -> None:
    order = ["low", "medium", "high", "xhigh", "max"]
    for spec in CATALOG.values():
        steps = [spec.steps[QUALITY_TIER[quality]] for quality in order]
        assert steps == sorted(steps), spec.id
    assert {QUALITY_TIER[q] for q in ("auto", "standard", "medium")} == {"standard"}


@pytest.mark.parametrize("output_format", ["gif", "svg"])
def test_formats_this_server_cannot_encode_are_a_400_that_says_what_it_can(api: TestClient, output_format: str) -> None:
    response = api.post("/v1/images/generations", json={**SMALL, "output_format": output_format})
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "output_format"
    assert error["message"] == (
        f"Invalid value for 'output_format': this server encodes png, jpeg, webp; '{output_format}' is not available."
    )


def test_messages_carry_no_pydantic_prefixes(api: TestClient) -> None:
    error = api.post("/v1/images/generations", json={"prompt": "   "}).json()["error"]
    assert error["param"] == "prompt"
    assert error["message"] == "Invalid value for 'prompt': the prompt must not be empty."


def test_json_sent_to_the_edits_route_is_told_to_send_multipart(api: TestClient) -> None:
    response = api.post("/v1/images/edits", json={"prompt": "x", "image": "https://example.com/a.png"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_content_type" and "multipart/form-data" in error["message"]


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_without_a_json_content_type_is_read_as_json(api: TestClient, content_type: str | None) -> None:
    """`curl -d '{…}'` without -H sends a form type; some clients send none at all."""
    headers = {"content-type": content_type} if content_type else {}
    response = api.post(
        "/v1/images/generations", content=b'{"prompt": "a lighthouse", "size": "64x64"}', headers=headers
    )
    assert response.status_code == 200, response.text
    broken = api.post("/v1/images/generations", content=b"prompt=a+lighthouse", headers=headers)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"


def test_each_image_says_its_seed_and_the_seed_remakes_it(api: TestClient) -> None:
    made = api.post("/v1/images/generations", json={**SMALL, "n": 2, "response_format": "b64_json"}).json()["data"]
    first, second = (item["seed"] for item in made)
    assert second == first + 1
    again = api.post("/v1/images/generations", json={**SMALL, "seed": second, "response_format": "b64_json"}).json()[
        "data"
    ]
    # The second image of n=2, remade alone: the same picture; see the README on exact bytes.
    difference = max(
        abs(a - b)
        for a, b in zip(
            png(base64.b64decode(again[0]["b64_json"])).tobytes(),
            png(base64.b64decode(made[1]["b64_json"])).tobytes(),
            strict=True,
        )
    )
    assert difference <= 1


def test_sizes_openai_accepts_are_delivered_at_that_size(api: TestClient) -> None:
    response = api.post(
        "/v1/images/generations",
        json={"prompt": "x", "size": "2048x688", "model": "tiny-sd", "response_format": "b64_json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == "2048x688"
    assert png(base64.b64decode(response.json()["data"][0]["b64_json"])).size == (2048, 688)


def test_edits_take_images_as_openai_names_them_and_answer_b64(api: TestClient) -> None:
    files = [("image[]", ("a.png", png_bytes(noise((64, 64))), "image/png")) for _ in range(2)]
    response = api.post("/v1/images/edits", data={"prompt": "x", "model": "gpt-image-1"}, files=files)
    assert response.status_code == 200, response.text
    assert png(base64.b64decode(response.json()["data"][0]["b64_json"])).size == (64, 64)


def test_an_openai_name_goes_to_a_served_model_that_does_the_task(make_settings) -> None:
    """With an edits-only model as the default, a generation by OpenAI name still finds a generator."""
    with TestClient(create_local_app(make_settings(models="sdxl-inpainting,tiny-sd"))) as api:
        assert api.get("/v1/models/gpt-image-2").json()["id"] == "sdxl-inpainting"
        response = api.post("/v1/images/generations", json={**SMALL, "model": "gpt-image-2"})
        assert response.status_code == 200, response.text
        assert api.post("/v1/images/generations", json={**SMALL, "model": "sdxl-inpainting"}).status_code == 400
