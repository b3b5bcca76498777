"""What an operator sees: request ids, one log line per request, /metrics, readiness, /docs offline."""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from handlers.hosts.local import create_local_app
from tests.conftest import API_KEY, Server, start_server, stop_server

SMALL = {"model": "tiny-sd", "prompt": "a lighthouse", "size": "64x64", "seed": 7, "num_inference_steps": 2}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


# --- request ids ----------------------------------------------------------------------------


def test_every_response_has_a_request_id_and_a_callers_own_is_kept(api: TestClient) -> None:
    first, second = api.get("/health"), api.get("/health")
    assert re.fullmatch(r"req_[0-9a-f]{24}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert api.get("/health", headers={"x-request-id": "trace-42/a"}).headers["x-request-id"] == "trace-42/a"
    # Not an id (too long, or with spaces or newlines): replaced, never echoed.
    assert api.get("/health", headers={"x-request-id": "x" * 200}).headers["x-request-id"].startswith("req_")
    assert api.get("/health", headers={"x-request-id": "a b"}).headers["x-request-id"].startswith("req_")


def test_error_bodies_carry_the_request_id(api: TestClient) -> None:
    response = api.post(
        "/v1/images/generations", json={"prompt": "x", "size": "70x70"}, headers={"x-request-id": "mine-1"}
    )
    assert response.json()["error"]["request_id"] == "mine-1" == response.headers["x-request-id"]


# --- the log ----------------------------------------------------------------------------------


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [record.fields for record in caplog.records if record.name == "imagegen.request"]


def test_one_line_per_request_says_what_was_asked_what_it_cost_and_how_it_ended(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imagegen.request")
    made = api.post("/v1/images/generations", json=SMALL, headers={"x-request-id": "line-1"})
    refused = api.post("/v1/images/generations", json={**SMALL, "size": "70x70"}, headers={"x-request-id": "line-2"})
    lines = {line["request_id"]: line for line in _request_lines(caplog)}
    line = lines["line-1"]
    assert (
        line["route"],
        line["status"],
        line["model"],
        line["task"],
        line["size"],
        line["n"],
        line["steps"],
        line["seed"],
    ) == ("/v1/images/generations", 200, "tiny-sd", "generate", "64x64", 1, 2, 7)
    assert line["queue_s"] >= 0 and line["run_s"] > 0 and line["total_s"] >= line["run_s"]
    assert line["bytes_out"] == len(made.content) and line["error"] is None
    assert (lines["line-2"]["status"], lines["line-2"]["error"]) == (400, "invalid_value")
    assert len(refused.content) == lines["line-2"]["bytes_out"]


def test_json_logs_one_object_a_line_with_the_request_id_and_no_keys(cache_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_API_KEYS": API_KEY,
        "IMAGEGEN_LOG_FORMAT": "json",
    }
    process, url = start_server(env, log_path)
    try:
        response = httpx.post(f"{url}/v1/images/generations", json=SMALL, headers=AUTH, timeout=60)
        assert response.status_code == 200
    finally:
        stop_server(process)
    text = log_path.read_text()
    assert API_KEY not in text
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    started = next(entry for entry in entries if entry["message"].startswith("serving"))
    assert "tiny-sd" in started["message"] and started["keys"] == 1 and "cpu" in started["message"]
    (request,) = [
        entry
        for entry in entries
        if entry["logger"] == "imagegen.request" and entry.get("route") == "/v1/images/generations"
    ]
    assert request["request_id"] == response.headers["x-request-id"] and request["status"] == 200
    # The default model's load begins as the server starts (nobody asked: no request id), unless
    # the request got there first: then the load is the request's own.
    loaded = next(entry for entry in entries if entry["message"].startswith("loaded tiny-sd in"))
    assert loaded["request_id"] in ("-", response.headers["x-request-id"])


# --- /metrics -------------------------------------------------------------------------------


def _samples(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    }


def _metric(name: str, **labels: str) -> str:
    """A sample's name as prometheus-client writes it: labels in name order."""
    return name + ("{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}" if labels else "")


def test_metrics_after_a_short_burst(make_settings, tmp_path: Path) -> None:
    with TestClient(create_local_app(make_settings(models="tiny-sd,tiny-sdxl", storage_dir=tmp_path))) as api:
        for _ in range(3):
            assert api.post("/v1/images/generations", json={**SMALL, "n": 2}).status_code == 200
        assert api.post("/v1/images/generations", json={**SMALL, "size": "70x70"}).status_code == 400
        samples = _samples(api.get("/metrics").text)
    route = "/v1/images/generations"
    assert samples[_metric("imagegen_requests_total", route=route, model="tiny-sd", task="generate", status="200")] == 3
    assert samples[_metric("imagegen_images_total", model="tiny-sd", task="generate")] == 6
    assert samples[_metric("imagegen_errors_total", code="invalid_value")] == 1
    assert samples[_metric("imagegen_request_seconds_count", route=route, model="tiny-sd")] == 3
    assert samples[_metric("imagegen_queue_wait_seconds_count", model="tiny-sd")] == 3
    assert samples[_metric("imagegen_queue_depth", model="tiny-sd")] == 0
    assert samples[_metric("imagegen_in_flight", model="tiny-sd")] == 0
    assert samples[_metric("imagegen_model_state", model="tiny-sd", state="ready")] == 1
    assert samples[_metric("imagegen_model_state", model="tiny-sdxl", state="not_loaded")] == 1
    assert samples[_metric("imagegen_model_load_seconds", model="tiny-sd")] > 0
    assert samples[_metric("imagegen_batches_total", model="tiny-sd", images="2")] == 3
    assert samples["imagegen_store_files"] == 6


def test_metrics_ask_for_a_key_like_v1_unless_made_public(server: Server, make_settings) -> None:
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers=AUTH).status_code == 200
    with TestClient(create_local_app(make_settings(models="tiny-sd", api_keys=API_KEY, metrics_public=True))) as api:
        assert api.get("/metrics").status_code == 200


# --- readiness ------------------------------------------------------------------------------


def test_readiness_and_models_say_each_models_state(make_settings, cache_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(cache_dir / "tiny" / "sd-v1", broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.write_bytes(b"truncated")
    with TestClient(create_local_app(make_settings(models=f"tiny-sd,{broken}")), raise_server_exceptions=False) as api:
        before = api.get("/health/ready")
        assert before.status_code == 200 and before.json()["models"]["tiny-sd"]["state"] == "not_loaded"
        api.post("/v1/images/generations", json=SMALL)
        api.post("/v1/images/generations", json={"model": "broken-model", "prompt": "x"})
        after = api.get("/health/ready").json()["models"]
        assert after["tiny-sd"]["state"] == "ready" and after["tiny-sd"]["load_seconds"] > 0
        assert after["broken-model"]["state"] == "failed" and "could not be loaded" in after["broken-model"]["reason"]
        assert api.get("/v1/models/tiny-sd").json()["state"] == "ready"
        assert api.get("/v1/models/broken-model").json()["state"] == "failed"
    with TestClient(create_local_app(make_settings(models=str(broken))), raise_server_exceptions=False) as api:
        api.post("/v1/images/generations", json={"prompt": "x"})
        assert api.get("/health/ready").status_code == 503  # nothing can serve
        assert api.get("/health").status_code == 200  # alive all the same


def test_readiness_waits_for_a_preload(make_settings) -> None:
    with TestClient(create_local_app(make_settings(models="tiny-sdxl", preload=True))) as api:
        deadline = time.monotonic() + 30
        while api.get("/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.get("/health/ready").json()["models"]["tiny-sdxl"]["state"] == "ready"


# --- /docs ----------------------------------------------------------------------------------


def test_docs_work_offline_and_have_an_authorize_button(api: TestClient) -> None:
    page = api.get("/docs").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)""", page) + re.findall(r"url: ?['\"]([^'\"]+)", page)
    assert assets and not [asset for asset in assets if asset.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        assert api.get(asset).status_code == 200, asset
    assert api.get("/redoc").status_code == 200
    schema = api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer sk-...`.",
    }
    assert schema["paths"]["/v1/images/generations"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]
