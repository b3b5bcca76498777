"""What an anonymous, hostile client can do to a real server: nothing that lasts.

Made-up paths add no metric series; control characters in a path cannot forge a log line; slow
or stalled connections are closed on time and /health keeps answering; one address cannot hold
every connection; a big JSON body is refused before it is parsed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import API_KEY, Server, start_server, stop_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def guarded(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server behind a key with short read timeouts and a small per-address connection cap."""
    storage = tmp_path_factory.mktemp("hostile-images")
    log_path = tmp_path_factory.mktemp("hostile-log") / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": API_KEY,
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_METRICS_PUBLIC": "true",
        "IMAGEGEN_HEADER_TIMEOUT_SECONDS": "2",
        "IMAGEGEN_BODY_GRACE_SECONDS": "2",
        "IMAGEGEN_MIN_BODY_BYTES_PER_SECOND": "10000",
        "IMAGEGEN_MAX_CONNECTIONS_PER_CLIENT": "12",
    }
    process, url = start_server(env, log_path)
    yield Server(url=url, storage_dir=storage, log_path=log_path)
    stop_server(process)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _log_once_it_says(server: Server, text: bytes) -> bytes:
    """The server's log, once `text` is in it (the request line is written after the answer)."""
    deadline = time.monotonic() + 30
    while text not in (log := server.log_path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


# --- metrics ----------------------------------------------------------------------------------


def test_made_up_paths_add_no_metric_series(api: TestClient) -> None:
    before = api.get("/metrics").text
    for i in range(40):
        api.get(f"/junk-{i}")
        api.get(f"/v1/temp-images/{'A' * 22}{i:02d}")  # a temp image id of the right shape that is not there
        api.post(f"/v1/nothing-{i}", json={})
    after = api.get("/metrics").text
    assert "junk-" not in after and "nothing-" not in after and "A" * 22 not in after
    assert 'route="unmatched"' in after
    assert 'route="/v1/temp-images/{image_id}"' in after
    # Forty times three made-up requests: a handful of new lines, not a hundred and twenty.
    assert len(after.splitlines()) - len(before.splitlines()) < 60


# --- the log ----------------------------------------------------------------------------------


def test_a_path_cannot_forge_a_log_line_or_write_control_characters(guarded: Server) -> None:
    forged = "INFO imagegen.request [req_x]: POST /v1/images/generations 200"
    path = "/x%0d%0a" + forged.replace(" ", "%20") + "%00%1b[31m" + "y" * 5000
    assert httpx.get(guarded.url + path).status_code == 404
    log = _log_once_it_says(guarded, b"/x\\x0d\\x0aINFO")
    assert b"\x00" not in log and b"\x1b" not in log and b"\r" not in log
    lines = log.decode().splitlines()
    assert not any(line.startswith(forged) for line in lines)
    echoed = [line for line in lines if "/x\\x0d\\x0aINFO" in line]
    assert len(echoed) == 1
    assert "y" * 300 not in echoed[0]  # bounded, not the whole 5,000 characters
