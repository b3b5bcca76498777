"""Content credentials: every final image (PNG, JPEG, WebP; b64 and URL; streamed too) carries a
signed C2PA manifest that the C2PA SDK's reader validates, saying a trained model (which one)
made or edited it; previews stay unsigned; a tampered image fails validation."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import c2pa
import httpx
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from PIL import Image

from handlers.hosts.local import create_local_app
from tests.conftest import Server, png_bytes

FAST = {"num_inference_steps": 1}
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def manifest(data: bytes, mime: str) -> tuple[dict, str]:
    """The active manifest and the reader's validation state."""
    reader = c2pa.Reader(mime, io.BytesIO(data))
    return reader.get_active_manifest(), reader.get_validation_state()


def actions(active: dict) -> list[dict]:
    [assertion] = [each for each in active["assertions"] if each["label"].startswith("c2pa.actions")]
    return assertion["data"]["actions"]


def assert_made_by(data: bytes, mime: str, model: str, action: str = "c2pa.created") -> dict:
    active, state = manifest(data, mime)
    assert state == "Valid"  # signed and intact; the local identity is in no trust list
    [made] = [each for each in actions(active) if each["action"] == action]
    assert made["digitalSourceType"] == TRAINED and made["softwareAgent"]["name"] == model and made["when"]
    return active


def upload() -> io.BytesIO:
    data = io.BytesIO(png_bytes(Image.new("RGB", (64, 64), (30, 140, 200))))
    data.name = "photo.png"
    return data


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_each_format_carries_a_valid_manifest_naming_the_model(client: OpenAI, output_format: str) -> None:
    response = client.images.generate(
        model="tiny-sd",
        prompt="a fox",
        size="64x64",
        output_format=output_format,
        response_format="b64_json",
        extra_body=FAST,
    )
    data = base64.b64decode(response.data[0].b64_json)
    assert_made_by(data, MIME[output_format], "tiny-sd")
    image = Image.open(io.BytesIO(data))
    assert image.size == (64, 64)
    if output_format == "png":  # the A1111 chunk stays beside the manifest
        assert "Model: tiny-sd" in image.text["parameters"]


def test_an_image_behind_a_url_is_signed_too(client: OpenAI) -> None:
    response = client.images.generate(
        model="tiny-flux", prompt="a fox", size="64x64", response_format="url", extra_body=FAST
    )
    assert_made_by(httpx.get(response.data[0].url, timeout=30).content, "image/png", "tiny-flux")


def test_an_edit_says_it_edited_its_input(client: OpenAI) -> None:
    response = client.images.edit(
        model="tiny-sd", image=upload(), prompt="a fox", response_format="b64_json", extra_body=FAST
    )
    active = assert_made_by(base64.b64decode(response.data[0].b64_json), "image/png", "tiny-sd", "c2pa.edited")
    assert [each["relationship"] for each in active["ingredients"]] == ["parentOf"]


def test_a_stream_signs_its_completed_images_not_its_previews(client: OpenAI) -> None:
    events = list(
        client.images.generate(
            model="tiny-sd",
            prompt="a fox",
            size="64x64",
            stream=True,
            partial_images=1,
            extra_body={"num_inference_steps": 2},
        )
    )
    [completed] = [event for event in events if event.type.endswith(".completed")]
    assert_made_by(base64.b64decode(completed.b64_json), "image/png", "tiny-sd")
    partials = [event for event in events if event.type.endswith(".partial_image")]
    assert partials
    for partial in partials:
        with pytest.raises(c2pa.C2paError):
            c2pa.Reader("image/png", io.BytesIO(base64.b64decode(partial.b64_json)))


def _tampered_png(data: bytes) -> bytes:
    """One byte of the pixel data changed, the chunk's CRC fixed: a well-formed PNG, other pixels."""
    at = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[at : at + 4])
    chunk = bytearray(data[at + 4 : at + 8 + length])
    chunk[-1] ^= 0x01
    return data[: at + 4] + bytes(chunk) + struct.pack(">I", zlib.crc32(chunk)) + data[at + 12 + length :]


def test_a_tampered_image_fails_validation(client: OpenAI) -> None:
    response = client.images.generate(
        model="tiny-sd", prompt="a fox", size="64x64", response_format="b64_json", extra_body=FAST
    )
    data = base64.b64decode(response.data[0].b64_json)
    assert manifest(data, "image/png")[1] == "Valid"
    _, state = manifest(_tampered_png(data), "image/png")
    assert state == "Invalid"


def test_the_server_says_at_start_that_its_credentials_are_self_signed(server: Server, client: OpenAI) -> None:
    assert "content credentials are SELF-SIGNED" in server.log_path.read_text()


def test_an_operators_certificate_signs_and_off_turns_it_off(make_settings, tmp_path) -> None:
    from handlers.provenance.identity import local_identity

    identity = local_identity(tmp_path / "operator")  # stands for a certificate an operator was issued
    body = {"model": "tiny-sd", "prompt": "x", "size": "64x64", "response_format": "b64_json", "num_inference_steps": 1}
    settings = make_settings(c2pa_cert=str(tmp_path / "operator" / "chain.pem"), c2pa_key=identity.key.decode())
    with TestClient(create_local_app(settings)) as api:
        data = base64.b64decode(api.post("/v1/images/generations", json=body).json()["data"][0]["b64_json"])
    active = assert_made_by(data, "image/png", "tiny-sd")
    assert json.dumps(active["signature_info"]).count("imagegen local signer") == 1
    with TestClient(create_local_app(make_settings(c2pa=False))) as api:
        data = base64.b64decode(api.post("/v1/images/generations", json=body).json()["data"][0]["b64_json"])
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("image/png", io.BytesIO(data))
