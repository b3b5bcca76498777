"""Fuzzing: the app's own OpenAPI schema drives requests at the real app; uploads at the decoder.

Whatever arrives, the answer is never a 5xx and every error is OpenAI's `{"error": {...}}`.
Bounded for CI: a few dozen requests per operation, the expensive knobs (n, steps) clamped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.python import asgi

from handlers.hosts.local import create_local_app
from handlers.http_errors import http_status
from handlers.images.uploads import read_edit_input
from pipelines.contract.errors import APIError

# Every operation in the schema, so a new route cannot go unfuzzed (checked below).
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("POST", "/v1/images/generations"),
    ("POST", "/v1/images/edits"),
    ("POST", "/v1/images/variations"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
    ("GET", "/v1/temp-images/{image_id}"),
    ("GET", "/v1/images/jobs"),
    ("GET", "/v1/images/jobs/{job_id}"),
    ("DELETE", "/v1/images/jobs/{job_id}"),
]
EXAMPLES = {GenerationMode.POSITIVE: 14, GenerationMode.NEGATIVE: 10}
_FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz_schema(make_settings) -> Iterator[Any]:
    """The schema as the app serves it, bound to the real app on the tiny models."""
    app = create_local_app(make_settings(models="tiny-sd,tiny-flux"))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (40, 90, 160, 0)[: len(mode)] if mode != "L" else 90).save(out, format="PNG")
    return out.getvalue()


def _bounded(case: Any, data: st.DataObject) -> None:
    """Keep the valid requests cheap (n, steps); sometimes give a real image so edits run through."""
    body = case.body
    if not isinstance(body, dict):
        return
    for name, cheap in (("n", 2), ("num_inference_steps", 2), ("partial_images", 1)):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > cheap:
            body[name] = data.draw(st.integers(1, cheap), label=name)
    multipart = (case.media_type or "").startswith("multipart/")
    if multipart and "image" in body and data.draw(st.booleans(), label="real image"):
        body["image"] = _png((64, 48))
        if "mask" in body and data.draw(st.booleans(), label="real mask"):
            body["mask"] = _png((64, 48), "RGBA")


def _assert_no_server_error_and_openai_shaped(response: Any, case: Any) -> None:
    where = f"{case.method} {case.formatted_path} {str(case.body)[:300]!r} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    assert response.status_code != 422, f"{where}: FastAPI's default validation error leaked"
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == {"error"}, where
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code", "request_id"}, where
        sent_back = response.headers["x-request-id"]  # schemathesis keeps each header's values in a list
        assert [error["request_id"]] == (sent_back if isinstance(sent_back, list) else [sent_back]), where
        assert isinstance(error["message"], str) and error["message"], where
        assert error["type"] == "invalid_request_error" or response.status_code == 429, where


def test_the_fuzz_list_covers_every_operation(fuzz_schema: Any) -> None:
    found = {
        (operation.method.upper(), operation.path)
        for operation in (result.ok() for result in fuzz_schema.get_all_operations())
    }
    assert found == set(OPERATIONS)


# Only a body can be invalid: every path and query parameter here is any string.
_RUNS = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in EXAMPLES
    if method == "POST" or mode is GenerationMode.POSITIVE
]


@pytest.mark.parametrize(("method", "path", "mode"), _RUNS, ids=[f"{m} {p} {g.value}" for m, p, g in _RUNS])
def test_fuzzed_requests_get_their_images_or_an_openai_error(
    fuzz_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = fuzz_schema[path][method]
    counted: list[int] = []

    @settings(_FUZZ, max_examples=EXAMPLES[mode])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode), label="case")
        _bounded(case, data)
        response = case.call(timeout=120)  # schemathesis' default of 10 s is too short for a busy CI box
        counted.append(response.status_code)
        _assert_no_server_error_and_openai_shaped(response, case)

    run()
    assert counted
    print(f"{method} {path} {mode.value}: {len(counted)} requests, statuses {sorted(set(counted))}")


# --- the decoder on its own: mutated real files --------------------------------------------------


def _sample(format: str, mode: str) -> bytes:
    image = Image.effect_noise((24, 16), 64).convert(mode)
    out = io.BytesIO()
    image.save(out, format=format, **({"save_all": True, "append_images": [image]} if format == "WEBP" else {}))
    return out.getvalue()


SAMPLES = [
    _sample("PNG", "RGBA"),
    _sample("PNG", "P"),
    _sample("PNG", "LA"),
    _sample("JPEG", "RGB"),
    _sample("JPEG", "CMYK"),
    _sample("WEBP", "RGB"),
]


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
            if not data:
                break
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]))
    return bytes(data)


@settings(_FUZZ, max_examples=300)
@given(image=_damaged(), mask=st.none() | _damaged())
def test_damaged_uploads_are_accepted_whole_or_refused_with_a_400(image: bytes, mask: bytes | None) -> None:
    try:
        edit = read_edit_input(image, mask)
    except APIError as error:
        assert http_status(error) == 400 and error.param in ("image", "mask"), error.message
        return
    # Accepted: the Worker gets an 8-bit RGB or RGBA image of the size it was told.
    decoded = Image.open(io.BytesIO(edit.image))
    decoded.load()
    assert decoded.mode in ("RGB", "RGBA") and decoded.size == edit.size
