"""Body limits: a request past them is refused with a 413 before its body is read into memory."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from handlers.hosts.local import create_local_app
from handlers.limits import MB
from tests.conftest import API_KEY, Server, png_bytes, start_server, stop_server
from tests.test_edit import noise

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def small_limits(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server whose uploads are capped at 1 MB, and whole requests at 3 MB."""
    storage = tmp_path_factory.mktemp("limits-images")
    log_path = tmp_path_factory.mktemp("limits-log") / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": API_KEY,
        "IMAGEGEN_MAX_UPLOAD_MB": "1",
        "IMAGEGEN_MAX_REQUEST_MB": "3",
        "IMAGEGEN_MODELS": "tiny-sd",
    }
    process, url = start_server(env, log_path)
    yield Server(url=url, storage_dir=storage, log_path=log_path)
    stop_server(process)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the HTTP response on `sock` (the server closes or sends Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = lengths[0] if lengths else None
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def _multipart(parts: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "limits-boundary-7f3a"
    body = b""
    for name, content in parts.items():
        filename = f'; filename="{name}.png"' if name.startswith(("image", "mask")) else ""
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n').encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- over real HTTP ---------------------------------------------------------------------------


def test_a_declared_length_past_the_limit_is_refused_before_any_body_is_sent(server: Server) -> None:
    """The request line and headers only: the 413 arrives while the body was never sent."""
    with _connect(server.url) as sock:
        sock.sendall(
            b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + API_KEY.encode()
            + b"\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000000000\r\n\r\n"
        )
        status, body = _response(sock)
    assert status == 413
    assert b'"code":"request_too_large"' in body and b'"type":"invalid_request_error"' in body


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(small_limits: Server) -> None:
    """No Content-Length: the server counts as it reads and answers once the body passes the limit,
    while the body is still unfinished (a server that waited for its end would never answer here)."""
    limit = MB  # a JSON body's limit (IMAGEGEN_MAX_JSON_KB), under the whole request's 3 MB
    chunk = b" " * (256 * 1024)
    with _connect(small_limits.url) as sock:
        sock.settimeout(60)  # a loaded machine may take a while; no answer at all fails the test
        sock.sendall(
            b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + API_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(limit // len(chunk) + 1):  # one chunk past the limit, and no last chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body = _response(sock)
    assert status == 413
    assert b'"code":"request_too_large"' in body


@pytest.mark.parametrize("field", ["image", "image[]", "mask"])
def test_a_file_past_the_upload_limit_is_a_413_naming_the_field(small_limits: Server, field: str) -> None:
    files = {"image": ("a.png", png_bytes(noise((64, 64))), "image/png")}
    files[field] = ("big.png", os.urandom(1 * MB + 1), "image/png")
    response = httpx.post(
        f"{small_limits.url}/v1/images/edits", headers=AUTH, files=files, data={"prompt": "x"}, timeout=30
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error == {
        "message": f"The '{field.removesuffix('[]')}' file is larger than the 1 MB limit.",
        "type": "invalid_request_error",
        "param": field.removesuffix("[]"),
        "code": "file_too_large",
        "request_id": response.headers["x-request-id"],
    }


def test_the_sdk_sees_the_413_and_the_server_keeps_serving(small_limits: Server) -> None:
    client = OpenAI(api_key=API_KEY, base_url=f"{small_limits.url}/v1", max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(model="tiny-sd", prompt="x", image=("big.png", os.urandom(2 * MB), "image/png"))
    assert caught.value.status_code == 413
    assert caught.value.body["param"] == "image"
    ok = client.images.edit(
        model="tiny-sd",
        prompt="x",
        response_format="b64_json",
        image=("a.png", png_bytes(noise((64, 64))), "image/png"),
    )
    assert len(ok.data) == 1


def test_the_key_is_checked_before_the_body_limit(small_limits: Server) -> None:
    """Without a key nothing about the request is looked at, its size included."""
    with _connect(small_limits.url) as sock:
        sock.sendall(b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000000\r\n\r\n")
        status, _ = _response(sock)
    assert status == 401


# --- in process: the edges --------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(make_settings) -> Iterator[TestClient]:
    with TestClient(
        create_local_app(make_settings(max_upload_mb=1, max_request_mb=3, models="tiny-sd")),
        raise_server_exceptions=False,
    ) as api:
        yield api


def test_a_file_exactly_at_the_limit_is_read_and_one_byte_more_is_not(capped: TestClient) -> None:
    at_limit = capped.post(
        "/v1/images/edits", data={"prompt": "x"}, files={"image": ("a.png", b"\0" * MB, "image/png")}
    )
    assert at_limit.status_code == 400 and at_limit.json()["error"]["code"] == "invalid_image"  # read, then judged
    over = capped.post(
        "/v1/images/edits", data={"prompt": "x"}, files={"image": ("a.png", b"\0" * (MB + 1), "image/png")}
    )
    assert over.status_code == 413 and over.json()["error"]["param"] == "image"


def test_a_text_field_past_the_limit_is_named_too(capped: TestClient) -> None:
    response = capped.post(
        "/v1/images/edits",
        data={"prompt": "x" * (MB + 1)},
        files={"image": ("a.png", png_bytes(noise((64, 64))), "image/png")},
    )
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "prompt"


def test_many_files_each_under_the_limit_still_meet_the_body_limit(capped: TestClient) -> None:
    parts = {f"mask{i}": b"\0" * (MB - 1024) for i in range(4)}
    body, content_type = _multipart({"prompt": b"x", **parts})

    def stream() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = capped.post("/v1/images/edits", content=stream(), headers={"content-type": content_type})
    assert response.status_code == 413
    assert response.json()["error"] == {
        "message": "The request body is too large; the limit is 3 MB.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
        "request_id": response.headers["x-request-id"],
    }


def test_a_json_body_past_the_limit_is_a_413_not_a_parse_error(capped: TestClient) -> None:
    """Counted without a Content-Length, so the route is already parsing when the limit is hit."""
    body = b'{"prompt": "' + b"x" * (4 * MB) + b'"}'
    chunks = iter([body[start : start + 65536] for start in range(0, len(body), 65536)])
    response = capped.post("/v1/images/generations", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_declared_length_is_refused_with_its_size(capped: TestClient) -> None:
    started = time.monotonic()
    response = capped.post(
        "/v1/images/generations", content=b"{}" + b" " * (4 * MB), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "A JSON request body is too large (4.0 MB); the limit is 1 MB."
    assert time.monotonic() - started < 5
