"""What an anonymous, hostile client can do to a real server: nothing that lasts.

Made-up paths add no metric series; control characters in a path cannot forge a log line; slow
or stalled connections are closed on time and /health keeps answering; one address cannot hold
every connection; a big JSON body is refused before it is parsed.
"""

from __future__ import annotations

import json
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
    """Everything the server sends until it closes the connection. A server that closes while
    bytes the client sent are still unread resets the connection instead (TCP's rule): its answer,
    already received, is what came before the reset."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
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


# --- slow and stalled clients -----------------------------------------------------------------


def _status_and_error(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /health HTTP/1.1\r\nHost: x\r\n", b"POST /v1/images/generations HTTP/1.1\r\nContent-Le"],
    ids=["nothing", "headers-never-finished", "half-a-header"],
)
def test_a_request_whose_headers_never_finish_is_a_408_and_closed(guarded: Server, sent: bytes) -> None:
    with _connect(guarded.url) as sock:
        sock.sendall(sent)
        status, error = _status_and_error(_read_all(sock))
    assert status == 408
    assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"


def test_a_body_sent_a_byte_at_a_time_is_a_408_and_closed(guarded: Server) -> None:
    with _connect(guarded.url) as sock:
        sock.sendall(
            b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {API_KEY}\r\nContent-Length: 5000\r\n\r\n".encode()
        )
        sock.settimeout(0.5)
        data = b""
        for _ in range(120):  # a byte every half second, until the server gives up on us
            try:
                sock.sendall(b" ")
                data += sock.recv(65536)
                if data:
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(30)
        data += _read_all(sock)
    status, error = _status_and_error(data)
    assert status == 408 and error["code"] == "request_timeout"
    assert "too slowly" in error["message"]


def test_health_answers_while_stalled_connections_are_open_and_they_are_closed(guarded: Server) -> None:
    stalled = [_connect(guarded.url) for _ in range(8)]
    for sock in stalled:
        sock.sendall(b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\n")
    try:
        assert httpx.get(f"{guarded.url}/health", timeout=30).status_code == 200
        assert [_status_and_error(_read_all(sock))[0] for sock in stalled] == [408] * 8
    finally:
        for sock in stalled:
            sock.close()


def test_one_address_cannot_hold_every_connection(guarded: Server) -> None:
    held = [_connect(guarded.url) for _ in range(12)]
    try:
        with _connect(guarded.url) as one_more:
            status, error = _status_and_error(_read_all(one_more))
        assert status == 429 and error["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30  # once they are closed, the address is welcome again
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{guarded.url}/health", timeout=30).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        pytest.fail("/health never answered again")


# --- big JSON ---------------------------------------------------------------------------------


def _json_of_small_objects(size: int) -> bytes:
    """A JSON body of many small objects: valid, far past any real request, cheap to send."""
    item = b'{"a":1},'
    return b'{"prompt":"x","junk":[' + item * (size // len(item)) + b'{"a":1}]}'


def test_a_big_json_body_is_refused_before_it_is_parsed(guarded: Server) -> None:
    body = _json_of_small_objects(8 * 1024 * 1024)  # within the whole-request limit, far past JSON's
    declared = httpx.post(f"{guarded.url}/v1/images/generations", content=body, headers=AUTH, timeout=60)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    assert "JSON" in declared.json()["error"]["message"]

    results: list = []

    def send_chunked() -> None:  # no Content-Length: counted as it arrives
        chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
        try:
            results.append(httpx.post(f"{guarded.url}/v1/images/generations", content=chunks, headers=AUTH, timeout=60))
        except httpx.HTTPError as exc:  # the server may close while we are still sending
            results.append(exc)

    sender = threading.Thread(target=send_chunked)
    sender.start()
    assert httpx.get(f"{guarded.url}/health", timeout=30).status_code == 200
    sender.join(timeout=60)
    answer = results[0]
    assert not isinstance(answer, httpx.Response) or (
        answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"
    )
