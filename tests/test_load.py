"""Under load and faults: bounded queues, batching, hang-ups, injected failures, shutdown."""

from __future__ import annotations

import base64
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from handlers.hosts.local import create_local_app
from pipelines.pace import RETRY_FLOOR_SECONDS
from tests.conftest import Server, start_server, stop_server

LONG = {"model": "tiny-sd", "prompt": "a long one", "size": "1024x1024", "num_inference_steps": 40}
SMALL = {"model": "tiny-sd", "prompt": "a small one", "size": "64x64"}


@pytest.fixture(scope="module")
def tight(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose queue holds one waiting request and lets it wait two seconds."""
    storage = tmp_path_factory.mktemp("tight-images")
    log_path = tmp_path_factory.mktemp("tight-log") / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_MAX_QUEUE": "1",
        "IMAGEGEN_QUEUE_TIMEOUT_SECONDS": "2",
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
    }
    process, url = start_server(env, log_path)
    assert httpx.post(f"{url}/v1/images/generations", json=SMALL, timeout=60).status_code == 200  # warm
    yield Server(url=url, storage_dir=storage, log_path=log_path)
    stop_server(process)


def _post_in_background(url: str, body: dict, results: list, timeout: float = 60) -> threading.Thread:
    def post() -> None:
        try:
            results.append(httpx.post(f"{url}/v1/images/generations", json=body, timeout=timeout))
        except httpx.HTTPError as exc:
            results.append(exc)

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def _wait_for_log(server: Server, text: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in server.log_path.read_text().splitlines():
            if text in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the server log")


def test_a_full_queue_answers_429_at_once_and_a_long_wait_is_a_503(tight: Server) -> None:
    running, waiting = [], []
    long_job = _post_in_background(tight.url, LONG, running)
    time.sleep(0.5)  # the long job holds the model
    queued = _post_in_background(tight.url, SMALL, waiting)
    time.sleep(0.3)  # ...and the small one fills the queue
    began = time.monotonic()
    refused = httpx.post(f"{tight.url}/v1/images/generations", json=SMALL, timeout=30)
    assert time.monotonic() - began < 1.5, "a full queue must answer at once"
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "queue_full"
    assert int(refused.headers["retry-after"]) >= 1
    queued.join()
    (timed_out,) = waiting
    assert timed_out.status_code == 503
    assert timed_out.json()["error"]["code"] == "queue_timeout"
    assert timed_out.headers["x-should-retry"] == "true" and "retry-after" in timed_out.headers
    long_job.join()
    assert running[0].status_code == 200


def test_a_client_that_hangs_up_frees_its_place_and_stops_its_steps(tight: Server) -> None:
    running, waiting, later = [], [], []
    long_job = _post_in_background(tight.url, LONG, running, timeout=1.0)  # gives up after 1 s
    time.sleep(0.3)
    queued = _post_in_background(tight.url, SMALL, waiting, timeout=0.6)  # gives up while queued
    queued.join()
    assert isinstance(waiting[0], httpx.TimeoutException)
    time.sleep(0.3)
    # Its place is free: a new request queues instead of being refused.
    accepted = _post_in_background(tight.url, SMALL, later)
    long_job.join()
    accepted.join()
    assert later[0].status_code == 200
    line = _wait_for_log(tight, "stopped tiny-sd after step")
    assert int(line.split("after step ")[1].split()[0]) < 40


def test_compatible_requests_share_a_pipeline_call_and_keep_their_seeds(make_settings) -> None:
    app = create_local_app(make_settings(models="tiny-sdxl", batch_wait_ms=300))
    bodies = [
        {
            "model": "tiny-sdxl",
            "prompt": f"scene {i}",
            "size": "64x64",
            "response_format": "b64_json",
            "seed": 100 + i,
            "n": 1 + i % 2,
        }
        for i in range(4)
    ]

    def calls() -> float:
        """Pipeline calls so far, as /metrics tells an operator."""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in api.get("/metrics").text.splitlines()
            if line.startswith("imagegen_batches_total{") and 'model="tiny-sdxl"' in line
        )

    with TestClient(app) as api:
        alone = [api.post("/v1/images/generations", json=body).json() for body in bodies]
        assert calls() == len(bodies)  # one after another: a pipeline call each
        results: list = [None] * len(bodies)

        def post(i: int) -> None:
            results[i] = api.post("/v1/images/generations", json=bodies[i]).json()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # At once: they arrived within the 300 ms window, so they shared calls (6 images fit in 8).
        together = calls() - len(bodies)
        assert 1 <= together < len(bodies)
    for single, batched in zip(alone, results, strict=True):
        assert len(batched["data"]) == len(single["data"])
        for a, b in zip(single["data"], batched["data"], strict=True):
            # Same seed, same prompt: the same image whether it ran alone or in a batch, within the
            # README's 2 levels (another batch shape sums its floats in another order).
            assert _max_pixel_difference(a["b64_json"], b["b64_json"]) <= 2


def _max_pixel_difference(a: str, b: str) -> int:
    from PIL import ImageChops

    from tests.conftest import png

    first, second = png(base64.b64decode(a)), png(base64.b64decode(b))
    return max(high for _, high in ImageChops.difference(first, second).getextrema())


def test_out_of_memory_is_a_503_worth_retrying_and_the_worker_recovers(make_settings) -> None:
    app = create_local_app(make_settings(models="tiny-sd"))
    with TestClient(app) as api:
        unet = app.state.services.engine.worker.models.get("tiny-sd").pipe.unet
        real_forward = unet.forward

        def out_of_memory(*args, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")

        unet.forward = out_of_memory
        failed = api.post("/v1/images/generations", json=SMALL)
        unet.forward = real_forward
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "out_of_memory"
        assert failed.headers["x-should-retry"] == "true" and failed.headers["retry-after"]
        assert "20.00 GiB" not in failed.text  # the device's details stay in the log
        assert api.post("/v1/images/generations", json=SMALL).status_code == 200


def test_a_pipeline_fault_is_a_500_without_retry_and_the_next_request_works(make_settings) -> None:
    app = create_local_app(make_settings(models="tiny-sd"))
    with TestClient(app, raise_server_exceptions=False) as api:
        unet = app.state.services.engine.worker.models.get("tiny-sd").pipe.unet
        real_forward = unet.forward
        unet.forward = lambda *args, **kwargs: (_ for _ in ()).throw(ValueError("injected fault"))
        failed = api.post("/v1/images/generations", json=SMALL)
        unet.forward = real_forward
        assert failed.status_code == 500
        assert failed.headers["x-should-retry"] == "false"
        assert "injected" not in failed.text and "Traceback" not in failed.text
        assert api.post("/v1/images/generations", json=SMALL).status_code == 200


def test_a_failed_load_is_retried_by_the_next_request(make_settings, cache_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flaky"
    shutil.copytree(cache_dir / "tiny" / "sd-v1", folder)
    weights = next((folder / "unet").glob("*.safetensors"))
    good = weights.read_bytes()
    weights.write_bytes(b"not yet downloaded")
    with TestClient(create_local_app(make_settings(models=f"tiny-sd,{folder}")), raise_server_exceptions=False) as api:
        first = api.post("/v1/images/generations", json={"model": "flaky", "prompt": "x"})
        assert first.status_code == 500 and first.json()["error"]["code"] == "model_load_failed"
        weights.write_bytes(good)  # the weights arrive
        assert api.post("/v1/images/generations", json={"model": "flaky", "prompt": "x"}).status_code == 200


def test_shutdown_lets_in_flight_requests_finish(cache_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_SHUTDOWN_TIMEOUT_SECONDS": "120",
    }  # a loaded machine's job fits: it is not the bound's test
    process, url = start_server(env, log)
    try:
        assert httpx.post(f"{url}/v1/images/generations", json=MID, timeout=300).status_code == 200  # warm
        results: list = []
        in_flight = _post_in_background(url, MID, results, timeout=300)
        _wait_until_queued(url, running=1, waiting=0)
        process.send_signal(signal.SIGTERM)
        in_flight.join()
        # uvicorn finishes in-flight requests, then re-raises the signal it caught.
        assert process.wait(timeout=150) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            stop_server(process)
    assert results[0].status_code == 200
    stored = tmp_path / "images" / results[0].json()["data"][0]["url"].rsplit("/", 1)[1]
    assert stored.stat().st_size > 0  # written whole before the answer went out
    assert list((tmp_path / "images").glob(".incoming-*")) == []  # no half-written files


def test_the_load_script_loses_nothing(server: Server) -> None:
    from scripts import load
    from tests.conftest import API_KEY

    (row,) = load.main(["--url", server.url, "--key", API_KEY, "--bursts", "12", "--size", "64x64"])
    assert row["sent"] == "12" and row["lost"] == "0" and row["errors"] == "0"
    assert int(row["200"]) + int(row["429/503"]) == 12


# Long enough to be seen running on an idle machine, short enough for one at load 8.
MID = {"model": "tiny-sd", "prompt": "a mid one", "size": "512x512", "num_inference_steps": 20}


def test_retry_after_says_when_a_place_really_frees(cache_dir: Path, tmp_path: Path) -> None:
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_MAX_QUEUE": "1",
    }
    process, url = start_server(env, tmp_path / "server.log")
    try:
        for _ in range(2):  # the engine learns how long such a job runs
            assert httpx.post(f"{url}/v1/images/generations", json=MID, timeout=300).status_code == 200
        running, waiting, finished = [], [], []
        holder = threading.Thread(
            target=lambda: (
                running.append(httpx.post(f"{url}/v1/images/generations", json=MID, timeout=300)),
                finished.append(time.monotonic()),
            )
        )
        holder.start()
        _wait_until_queued(url, running=1, waiting=0)
        queued = _post_in_background(url, SMALL, waiting, timeout=300)
        _wait_until_queued(url, running=1, waiting=1)
        refused = httpx.post(f"{url}/v1/images/generations", json=SMALL, timeout=300)
        told_at = time.monotonic()
        assert refused.status_code == 429
        told = int(refused.headers["retry-after-ms"]) / 1000
        assert int(refused.headers["retry-after"]) == max(1, -(-told // 1))  # the same, in whole seconds
        holder.join()
        queued.join()
        behind = time.monotonic() - finished[0]  # at most what the waiting job took after it
        # The place frees when the running job ends and the waiting one starts: against the time it
        # really took, not a constant, so a loaded machine (slower for both) keeps the ratio. A job
        # nearly done is told the floor, the shortest wait a retry is sent after; refused clients
        # are spread over the waiting job's run on top, so they do not all come back at once.
        actual = finished[0] - told_at
        assert actual / 2 <= told <= max(actual * 2, RETRY_FLOOR_SECONDS) + 2 * behind, (told, actual, behind)
        assert running[0].status_code == 200 and waiting[0].status_code == 200
    finally:
        stop_server(process)


def test_the_retry_after_estimate_follows_each_jobs_pixels_and_steps() -> None:
    """The pace behind Retry-After and the drain, without a server: 64x64 jobs say nothing false about 512x512."""
    from pipelines.pace import Pace, work

    small, big = work(1, 64, 64, 4), work(1, 512, 512, 20)
    pace = Pace()
    assert pace.until_done(big, 0.0) == RETRY_FLOOR_SECONDS and pace.fitting([small], 100) == 0  # nothing known
    for _ in range(3):
        pace.ran(small, 0.25)  # 0.2 s fixed + 0.05 s of work, as the line below has it
    assert pace.seconds(big) > 10 * pace.seconds(small)  # one size seen: proportional, never per model
    for _ in range(3):
        pace.ran(big, 0.2 + 0.05 * big / small)
    pace.ran(small, 0.25)
    assert pace.seconds(big) == pytest.approx(0.2 + 0.05 * big / small, rel=0.01)
    assert pace.seconds(small) == pytest.approx(0.25, rel=0.05)
    assert pace.until_done(big, 4.0) == pytest.approx(pace.seconds(big) - 4.0)  # what is left of the running one
    assert pace.until_done(big, 60.0) == RETRY_FLOOR_SECONDS  # past its estimate: soon, never 0
    # The drain keeps what ends in time, in order: 20 s holds one 512x512x20 job (16.2 s each), or
    # every one of ten 64x64x4 ones, and nothing behind a job that cannot end in time.
    assert pace.fitting([big] * 10, 20.0) == 1 and pace.fitting([small] * 10, 20.0) == 10
    assert pace.fitting([small, big, small, small], 20.0) == 4 and pace.fitting([big, small], 16.0) == 0


def _run_seconds(log_path: Path) -> list[float]:
    """The server's own account of each finished generation's run time (its JSON log lines)."""
    import json

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line["run_s"] for line in lines if line.get("route") == "/v1/images/generations" and line.get("run_s")]


def _send_half_a_body(url: str, answers: list, timeout: float) -> threading.Thread:
    """A client still sending its body when the server stops: what it is answered, raw."""
    import socket

    def send() -> None:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(
                b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"model": "tiny-sd", '
            )
            answer = b""
            while chunk := sock.recv(65536):  # to the end: the server closes a connection once it stops
                answer += chunk
            answers.append(answer)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _wait_until_queued(url: str, running: int, waiting: int, seconds: float = 120) -> None:
    """Until the model runs and holds what was sent (/health/ready counts them): a loaded machine
    may take a while to read a request."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        model = httpx.get(f"{url}/health/ready", timeout=30).json()["models"]["tiny-sd"]
        if model["running"] >= running and model["waiting"] >= waiting:
            return
        time.sleep(0.05)
    raise AssertionError(f"never {running} running and {waiting} waiting")


SHUTDOWN_JOB = {"model": "tiny-sd", "prompt": "a mid one", "size": "256x256", "num_inference_steps": 10}
BIG_JOB = {**SHUTDOWN_JOB, "size": "1024x1024", "num_inference_steps": 50}


def test_shutdown_answers_what_cannot_finish_and_exits_within_its_bound(cache_dir: Path, tmp_path: Path) -> None:
    # The bound is set from the server's own measure of a job (its log's run_s), not a constant,
    # so a loaded machine only makes everything longer: the running job (twice the steps, so the
    # others queue behind it) fits in the bound three times over; the five waiting behind it are
    # 40 times its pixels x steps and cannot (a drain that counted jobs per model, after the small
    # ones, would keep them); and every request is answered either way.
    log_path = tmp_path / "probe.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_LOG_FORMAT": "json",
        # The half-sent body below must still be arriving when the signal comes, not timed out first.
        "IMAGEGEN_BODY_GRACE_SECONDS": "600",
    }
    process, url = start_server(env, log_path)
    try:
        for _ in range(2):
            assert httpx.post(f"{url}/v1/images/generations", json=SHUTDOWN_JOB, timeout=120).status_code == 200
    finally:
        stop_server(process)
    bound = max(4.0, 6 * max(_run_seconds(log_path)))
    process, url = start_server({**env, "IMAGEGEN_SHUTDOWN_TIMEOUT_SECONDS": f"{bound:.1f}"}, tmp_path / "server.log")
    try:
        assert httpx.post(f"{url}/v1/images/generations", json=SHUTDOWN_JOB, timeout=120).status_code == 200
        answers: list = []
        threads = [_post_in_background(url, {**SHUTDOWN_JOB, "num_inference_steps": 20}, answers, timeout=120)]
        _wait_until_queued(url, running=1, waiting=0)  # the first one runs
        threads += [_post_in_background(url, BIG_JOB, answers, timeout=120) for _ in range(5)]
        _wait_until_queued(url, running=1, waiting=5)  # the others wait
        raw: list = []
        threads.append(_send_half_a_body(url, raw, bound + 30))
        time.sleep(0.3)  # its headers are read (uvicorn calls the app then)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=bound + 30)
        exited = time.monotonic() - signalled
        for thread in threads:
            thread.join()
    finally:
        if process.poll() is None:
            stop_server(process)
    # Within the bound; the half second is the interpreter's own exit after the server is done.
    assert exited <= bound + 0.5, f"the process took {exited:.1f} s to stop (bound {bound:.1f} s)"
    statuses = sorted(answer.status_code for answer in answers)  # no request lost: each one answered
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:  # OpenAI's error JSON, retryable: never uvicorn's plain-text 500
            assert answer.json()["error"]["code"] == "shutting_down" and answer.headers["x-should-retry"] == "true"
            assert answer.headers["retry-after"]
    (half,) = raw
    assert half.startswith(b"HTTP/1.1 503 ") and b"x-should-retry: true" in half, half
    assert b'"code":"shutting_down"' in half, half
