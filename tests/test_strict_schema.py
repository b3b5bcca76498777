"""The schema says what it takes and takes only that: JSON types as JSON has them, ASCII sizes,
UTF-8 text in forms as in JSON, error codes never null, and a /openapi.json whose references resolve."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

SMALL = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "num_inference_steps": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", "2"), ("n", True), ("seed", "7"), ("stream", "true"), ("guidance_scale", "1.5"), ("partial_images", False)],
)
def test_json_numbers_and_booleans_are_not_coerced_from_other_types(api: TestClient, field: str, value: object) -> None:
    response = api.post("/v1/images/generations", json={**SMALL, field: value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == field


def test_json_numbers_of_the_right_type_still_work(api: TestClient) -> None:
    response = api.post("/v1/images/generations", json={**SMALL, "n": 2, "seed": 7, "guidance_scale": 1})
    assert response.status_code == 200 and len(response.json()["data"]) == 2


def test_multipart_numbers_arrive_as_text_and_are_still_read(api: TestClient) -> None:
    """The SDKs send every form field as text: the form stays lax where JSON is strict."""
    from tests.conftest import png_bytes
    from tests.test_edit import noise

    response = api.post(
        "/v1/images/variations",
        data={"model": "tiny-sd", "n": "2", "size": "64x64", "num_inference_steps": "1"},
        files={"image": ("a.png", png_bytes(noise((64, 64))), "image/png")},
    )
    assert response.status_code == 200 and len(response.json()["data"]) == 2


@pytest.mark.parametrize("size", ["١٠٢٤x١٠٢٤", "６４x６４", "64x６４"])
def test_sizes_take_ascii_digits_only(api: TestClient, size: str) -> None:
    response = api.post("/v1/images/generations", json={**SMALL, "size": size})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "size"


def test_invalid_utf8_in_a_form_field_is_a_400_as_it_is_in_json(api: TestClient) -> None:
    boundary = "strict-7f3a"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'.encode()
        + b"a \xff\xfe lighthouse\r\n"
        + f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()
        + b"\x89PNG not really\xff\r\n"  # a file part's bytes are not text: not judged as such
        + f"--{boundary}--\r\n".encode()
    )
    response = api.post(
        "/v1/images/edits", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("prompt", "invalid_encoding")
    as_json = api.post("/v1/images/generations", content=b'{"prompt": "a \xff lighthouse"}')
    assert as_json.status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"garbage", b"--x\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--x--\r\n"],
    ids=["not-multipart", "a-part-with-no-name"],
)
def test_a_form_the_parser_refuses_has_a_code(api: TestClient, body: bytes) -> None:
    response = api.post("/v1/images/edits", content=body, headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_every_reference_in_the_openapi_document_resolves(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    assert refs
    for ref in refs:
        target: object = document
        assert ref.startswith("#/"), ref
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"{ref} does not resolve"
            target = target[part]
