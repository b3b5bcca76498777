"""Keys, temp-image URLs, CORS and storage failures: what an attacker or a broken disk can do."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from handlers.auth import key_matches
from handlers.hosts.local import create_local_app
from tests.conftest import API_KEY, ROOT, Server, png_bytes
from tests.test_edit import noise

# --- keys -------------------------------------------------------------------------------------


def test_key_matching_is_exact() -> None:
    keys = ["sk-alpha-0123456789", "sk-beta"]
    assert key_matches("sk-alpha-0123456789", keys) and key_matches("sk-beta", keys)
    for wrong in ["", "sk-alpha", "sk-alpha-01234567890", "sk-beta ", "SK-BETA", "sk-bétà", "\x00"]:
        assert not key_matches(wrong, keys), wrong
    assert not key_matches("sk-beta", [])


@pytest.fixture(scope="module")
def locked(make_settings) -> Iterator[TestClient]:
    app = create_local_app(make_settings(api_keys=f"{API_KEY},sk-second-key", models="tiny-sd"))
    with TestClient(app, raise_server_exceptions=False) as api:
        yield api


def test_every_401_is_the_same_whatever_key_was_tried(locked: TestClient) -> None:
    """A near miss (a prefix of a real key, a real key plus a character) reads like any other miss."""
    attempts = [
        {},
        {"Authorization": "Bearer sk-wrong"},
        {"Authorization": f"Bearer {API_KEY[:-1]}"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": "Bearer sk-second"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": "Bearer"},
    ]
    answers = []
    for headers in attempts:
        # One request id for all (a caller's own id is kept), so only what the key changed could differ.
        response = locked.get("/v1/models", headers={**headers, "x-request-id": "probe-1"})
        assert response.status_code == 401
        answers.append((response.content, response.headers["www-authenticate"]))
    assert len(set(answers)) == 1
    assert API_KEY.encode() not in answers[0][0] and b"sk-second" not in answers[0][0]
    assert locked.get("/v1/models", headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200


def test_keys_are_not_logged_on_error_paths_either(server: Server) -> None:
    secret = "sk-never-logged-4f2a"
    for key in (API_KEY, secret):
        headers = {"Authorization": f"Bearer {key}"}
        httpx.post(f"{server.url}/v1/images/generations", headers=headers, json={"prompt": ""})
        httpx.post(
            f"{server.url}/v1/images/edits",
            headers=headers,
            data={"prompt": "x"},
            files={"image": ("a.png", b"not an image", "image/png")},
        )
        httpx.get(f"{server.url}/v1/nowhere-{key[:2]}", headers=headers)
    log = server.log_path.read_text()
    assert "/v1/nowhere-sk" in log  # the requests were logged...
    assert secret not in log and API_KEY not in log  # ...and no key with them


# --- temp images ------------------------------------------------------------------------------

REAL_LOOKING = "AAAAAAAAAAAAAAAAAAAAAAAA.png"


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written: no client-side normalising of `..` or re-encoding."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def planted(server: Server) -> Iterator[str]:
    """Files a traversal would reach: beside the store, and in it under names that are not ids."""
    outside = server.storage_dir.parent / REAL_LOOKING
    outside.write_bytes(b"SECRET outside the store")
    (server.storage_dir / (REAL_LOOKING + "\n")).write_bytes(b"SECRET newline name")
    (server.storage_dir / ".incoming-halfwritten").write_bytes(b"SECRET half written")
    yield "SECRET"
    outside.unlink()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/temp-images/../../../../etc/passwd",
        f"/v1/temp-images/../{REAL_LOOKING}",
        f"/v1/temp-images/..%2F{REAL_LOOKING}",
        f"/v1/temp-images/%2e%2e%2f{REAL_LOOKING}",
        f"/v1/temp-images/%252e%252e%252f{REAL_LOOKING}",
        f"/v1/temp-images/..%5C{REAL_LOOKING}",
        f"/v1/temp-images/%C0%AE%C0%AE%2F{REAL_LOOKING}",
        f"/v1/temp-images/{REAL_LOOKING}%0A",
        f"/v1/temp-images/{REAL_LOOKING}%00.txt",
        f"/v1/temp-images/{REAL_LOOKING}/..",
        "/v1/temp-images/.incoming-halfwritten",
        "/v1/temp-images/" + "A" * 5000 + ".png",
        "/v1/temp-images/%2Fetc%2Fpasswd",
    ],
)
def test_no_path_reaches_a_file_that_is_not_an_image_id(server: Server, planted: str, path: str) -> None:
    status, body = _raw_get(server.url, path)
    assert status == 404, body
    assert planted.encode() not in body and b"root:" not in body
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] in ("image_not_found", "unknown_url")


@pytest.fixture(scope="module")
def open_api(make_settings) -> Iterator[TestClient]:
    with TestClient(create_local_app(make_settings(models="tiny-sd")), raise_server_exceptions=False) as api:
        yield api


@pytest.mark.parametrize(
    ("format", "content_type"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")]
)
def test_temp_images_are_served_as_their_stored_type_only(open_api: TestClient, format: str, content_type: str) -> None:
    """Even bytes that look like HTML go out as the stored image type, and browsers may not sniff."""
    html = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    image_id = open_api.app.state.services.store.put(html, format)
    for headers, query in [({}, ""), ({"Accept": "text/html"}, "?format=html&content_type=text/html")]:
        response = open_api.get(f"/v1/temp-images/{image_id}{query}", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == html


# --- CORS -------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_cors_is_off_by_default(open_api: TestClient) -> None:
    preflight = open_api.options("/v1/images/generations", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    plain = open_api.get("/v1/models", headers={"Origin": "https://app.example.com"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


def test_configured_origins_may_call_and_read_errors_others_may_not(make_settings) -> None:
    settings = make_settings(
        models="tiny-sd", api_keys=API_KEY, cors_origins="https://app.example.com, https://b.example"
    )
    with TestClient(create_local_app(settings), raise_server_exceptions=False) as api:
        preflight = api.options("/v1/images/generations", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        # A 401 (no key on the preflight's follow-up) is readable by the page, so it can say why.
        unauthorized = api.get("/v1/models", headers={"Origin": "https://b.example"})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["access-control-allow-origin"] == "https://b.example"
        assert "x-should-retry" in unauthorized.headers["access-control-expose-headers"]
        stranger = api.get(
            "/v1/models", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {API_KEY}"}
        )
        assert "access-control-allow-origin" not in stranger.headers
        assert (
            api.options("/v1/images/generations", headers={**PREFLIGHT, "Origin": "https://evil.example"}).status_code
            == 400
        )


# --- storage failures -------------------------------------------------------------------------


def test_a_store_that_cannot_write_is_a_503_never_a_dead_url(make_settings, tmp_path: Path) -> None:
    storage = tmp_path / "images"
    app = create_local_app(make_settings(models="tiny-sd", storage_dir=storage))
    with TestClient(app, raise_server_exceptions=False) as api:
        request = {"model": "tiny-sd", "prompt": "x", "size": "64x64"}
        assert api.post("/v1/images/generations", json=request).status_code == 200
        # The folder is replaced by a file: every write now fails in the file system itself.
        shutil.rmtree(storage)
        storage.write_bytes(b"")
        response = api.post("/v1/images/generations", json=request)
        assert response.status_code == 503
        assert response.headers["x-should-retry"] == "true"
        error = response.json()["error"]
        assert error["code"] == "storage_unavailable" and error["type"] == "server_error"
        assert "b64_json" in error["message"] and str(tmp_path) not in error["message"]
        assert "url" not in response.text
        edit = api.post(
            "/v1/images/edits",
            data={"prompt": "x", "model": "tiny-sd"},
            files={"image": ("a.png", png_bytes(noise((64, 64))), "image/png")},
        )
        assert edit.status_code == 503
        # Inline images need no storage and keep working.
        inline = api.post("/v1/images/generations", json={**request, "response_format": "b64_json"})
        assert inline.status_code == 200
        assert api.get(f"/v1/temp-images/{REAL_LOOKING}").status_code == 404


def test_a_store_whose_folder_was_removed_makes_it_again(make_settings, tmp_path: Path) -> None:
    storage = tmp_path / "images"
    with TestClient(create_local_app(make_settings(models="tiny-sd", storage_dir=storage))) as api:
        shutil.rmtree(storage)  # a tmp cleaner got there first
        url = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "size": "64x64"}).json()[
            "data"
        ][0]["url"]
        assert api.get(url).status_code == 200


_WRITE_PAST_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from pathlib import Path
from handlers.http_errors import error_body, http_headers, http_status
from handlers.stores.folder import LocalImageStore
from pipelines.contract.errors import APIError

store = LocalImageStore(Path(sys.argv[1]), ttl_seconds=60)
# The kernel refuses writes past 64 KB from here on (EFBIG), as a full disk refuses them (ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
small = store.put(b"fits", "png")
try:
    store.put(b"x" * 1_000_000, "png")
except APIError as error:
    print(json.dumps({"small": small, "status": http_status(error), "body": error_body(error),
                      "headers": http_headers(error)}))
"""


def test_a_write_that_fails_half_way_is_a_503_and_leaves_no_half_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WRITE_PAST_A_FILE_SIZE_LIMIT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == 503
    assert outcome["headers"] == {"retry-after": "2", "retry-after-ms": "2000", "x-should-retry": "true"}
    assert outcome["body"]["error"]["code"] == "storage_unavailable"
    assert "File too large" in outcome["body"]["error"]["message"]
    assert [path.name for path in tmp_path.iterdir()] == [outcome["small"]]  # nothing half written stays
