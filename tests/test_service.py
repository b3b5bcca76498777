"""The service around the images: auth, models, temp URLs, error shapes, faults, concurrency."""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from handlers.hosts.local import create_local_app
from tests.conftest import API_KEY, Server, png
from tests.jobs import small_job

# --- auth -------------------------------------------------------------------------------------


def test_a_wrong_key_is_401_invalid_api_key(server: Server) -> None:
    wrong = OpenAI(api_key="sk-wrong", base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.body["code"] == "invalid_api_key"
    assert "sk-other-key" not in str(caught.value.body) and API_KEY not in str(caught.value.body)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}])
def test_every_v1_route_needs_the_key(server: Server, headers: dict) -> None:
    for method, path in [
        ("GET", "/v1/models"),
        ("POST", "/v1/images/generations"),
        ("POST", "/v1/images/edits"),
        ("GET", "/v1/no-such-route"),
    ]:
        response = httpx.request(method, f"{server.url}{path}", headers=headers, content=b"{not json")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_api_key"


def test_any_configured_key_works_and_health_is_open(server: Server) -> None:
    assert httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-other-key"}).status_code == 200
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}


def test_keys_never_reach_the_log(server: Server, client: OpenAI) -> None:
    client.models.list()
    httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-attempted-secret"})
    log = server.log_path.read_text()
    assert API_KEY not in log and "sk-other-key" not in log and "sk-attempted-secret" not in log


def test_an_open_server_warns_loudly(cache_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import start_server, stop_server

    log = tmp_path / "open.log"
    process, _ = start_server({"IMAGEGEN_CACHE_DIR": str(cache_dir), "IMAGEGEN_STORAGE_DIR": str(tmp_path)}, log)
    stop_server(process)
    assert "IMAGEGEN_API_KEYS is not set" in log.read_text()


# --- models -----------------------------------------------------------------------------------


def test_models_list_has_openai_shape_and_capabilities(client: OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [
        "tiny-sd",
        "tiny-sdxl",
        "tiny-flux",
        "tiny-flux2",
        "tiny-zimage",
        "tiny-sd3",
        "tiny-qwen-image",
        "tiny-flux-kontext",
    ]
    first = models.data[0].model_dump()
    assert first["object"] == "model" and first["owned_by"] and isinstance(first["created"], int)
    assert first["type"] == "image_generation"
    assert first["capabilities"]["max_n"] == 10
    assert first["capabilities"]["default_size"] == "512x512"
    assert {"gpt-image*", "chatgpt-image*", "dall-e*"} <= set(first["aliases"])  # every name of those families
    assert [m.id for m in client.models.list(extra_query={"type": "image_generation"}).data] == [
        m.id for m in models.data
    ]
    assert client.models.list(extra_query={"type": "chat"}).data == []


def test_models_retrieve_by_id_and_alias(client: OpenAI) -> None:
    assert client.models.retrieve("tiny-flux").capabilities["size_multiple"] == 16
    # OpenAI's names of today and tomorrow, no configuration needed.
    for name in (
        "gpt-image-1",
        "gpt-image-2",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-9-turbo",
        "chatgpt-image-latest",
        "dall-e-3",
    ):
        assert client.models.retrieve(name).id == "tiny-sd"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope")
    assert caught.value.body["code"] == "model_not_found"


def test_configured_aliases_pick_the_model(make_settings) -> None:
    app = create_local_app(make_settings(model_aliases="dall-e-3=tiny-flux,house-style=tiny-sdxl"))
    with TestClient(app) as api:
        assert api.get("/v1/models/dall-e-3").json()["id"] == "tiny-flux"
        assert api.get("/v1/models/house-style").json()["id"] == "tiny-sdxl"
        assert api.get("/v1/models/dall-e-2").json()["id"] == "tiny-sd"


# --- temp images ------------------------------------------------------------------------------


def _url(client: OpenAI) -> str:
    return client.images.generate(model="tiny-sd", prompt="x", size="64x64").data[0].url


def test_an_expired_url_is_404_at_once_and_the_sweep_deletes_it(client: OpenAI, server: Server) -> None:
    from handlers.stores.core import stamped_id

    url = _url(client)
    path = server.storage_dir / url.rsplit("/", 1)[1]
    assert httpx.get(url).status_code == 200
    # The id carries its creation second: the same image as if it had been made two hours ago.
    old = path.rename(server.storage_dir / stamped_id("png", time.time() - 7200))
    gone = httpx.get(url.rsplit("/", 1)[0] + "/" + old.name)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "image_not_found"
    assert not old.exists()


def test_images_named_by_an_older_version_expire_by_their_files_age(client: OpenAI, server: Server) -> None:
    """Ids without a creation stamp (written before ids carried one) still work, until their TTL."""
    base = _url(client).rsplit("/", 1)[0]
    fresh, stale = "A" * 21 + "f.png", "A" * 21 + "s.png"
    for name in (fresh, stale):
        (server.storage_dir / name).write_bytes(b"\x89PNG legacy")
    two_hours_ago = time.time() - 7200
    os.utime(server.storage_dir / stale, (two_hours_ago, two_hours_ago))
    assert httpx.get(f"{base}/{fresh}").content == b"\x89PNG legacy"
    assert httpx.get(f"{base}/{stale}").status_code == 404
    assert not (server.storage_dir / stale).exists()


def test_the_sweep_removes_expired_files(tmp_path: Path) -> None:
    from handlers.stores.folder import LocalImageStore

    now = [time.time()]
    store = LocalImageStore(tmp_path, ttl_seconds=60, clock=lambda: now[0])
    old = store.put(b"old", "png")
    now[0] += 100
    new = store.put(b"new", "png")
    assert store.sweep() == 1
    assert store.get(old) is None and store.get(new) == b"new"
    assert [path.name for path in tmp_path.iterdir()] == [new]


@pytest.mark.parametrize(
    "image_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2fconftest.py",
        "a" * 300 + ".png",
        "short.png",
        "x" * 22 + ".exe",
        "AAAAAAAAAAAAAAAAAAAAAA.png",
    ],
)
def test_only_real_ids_reach_the_store(server: Server, image_id: str) -> None:
    response = httpx.get(f"{server.url}/v1/temp-images/{image_id}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_urls_follow_the_proxy_headers(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "images.example.com",
        },
        json={"model": "tiny-sd", "prompt": "x", "size": "64x64"},
    )
    assert response.json()["data"][0]["url"].startswith("https://images.example.com/v1/temp-images/")


def test_public_url_setting_wins(make_settings) -> None:
    with TestClient(create_local_app(make_settings(public_url="https://cdn.example.org/img/"))) as api:
        response = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "size": "64x64"})
        url = response.json()["data"][0]["url"]
        assert url.startswith("https://cdn.example.org/img/v1/temp-images/")
        assert api.get(url.replace("https://cdn.example.org/img", "")).status_code == 200


# --- error shapes -----------------------------------------------------------------------------


def _assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code", "request_id"}  # OpenAI's four, and our id
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text and "detail" not in body
    return body["error"]


def test_malformed_json_is_a_400(api: TestClient) -> None:
    response = api.post("/v1/images/generations", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert _assert_openai_error(response, 400)["code"] == "invalid_json"
    not_object = api.post("/v1/images/generations", json=["a list"])
    assert _assert_openai_error(not_object, 400)["message"] == "The request body must be a JSON object."
    missing = api.post("/v1/images/generations", json={"n": 1})
    assert _assert_openai_error(missing, 400)["param"] == "prompt"


def test_unknown_routes_and_methods_are_openai_errors(api: TestClient) -> None:
    assert _assert_openai_error(api.get("/v1/images/nothing"), 404)["code"] == "unknown_url"
    assert _assert_openai_error(api.get("/v1/images/generations"), 405)["code"] == "method_not_allowed"


def test_a_model_that_fails_to_load_is_a_500_that_says_why_and_not_to_retry(
    make_settings, cache_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(cache_dir / "tiny" / "sd-v1", broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.write_bytes(b"truncated")
    with TestClient(create_local_app(make_settings(models=f"tiny-sd,{broken}")), raise_server_exceptions=False) as api:
        response = api.post("/v1/images/generations", json={"model": "broken-model", "prompt": "x"})
        error = _assert_openai_error(response, 500)
        assert response.headers["x-should-retry"] == "false"
        assert error["code"] == "model_load_failed" and "broken-model" in error["message"]
        # The other model keeps serving.
        ok = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "x", "size": "64x64"})
        assert ok.status_code == 200


def test_the_sdk_does_not_retry_a_failed_generation(make_settings, cache_dir: Path, tmp_path: Path) -> None:
    """x-should-retry: false keeps the SDK (2 retries by default) from re-running a failed job."""
    broken = tmp_path / "broken"
    shutil.copytree(cache_dir / "tiny" / "sd-v1", broken)
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", "unet": ["nope", "X"]}')
    with TestClient(create_local_app(make_settings(models=str(broken))), raise_server_exceptions=False) as api:
        attempts: list[httpx.Request] = []
        api.event_hooks["request"].append(attempts.append)
        sdk = OpenAI(api_key="x", base_url="http://testserver/v1", http_client=api, max_retries=2)
        with pytest.raises(openai.InternalServerError):
            sdk.images.generate(model="broken", prompt="x")
        assert len(attempts) == 1


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_requests_all_succeed_and_health_stays_fast(server: Server, client: OpenAI) -> None:
    results: list[object] = []

    def generate(model: str, size: str) -> None:
        try:
            response = client.images.generate(
                model=model, prompt="busy", size=size, quality="hd", response_format="b64_json"
            )
            results.append((time.monotonic(), png(base64.b64decode(response.data[0].b64_json)).size))
        except Exception as exc:  # collected, asserted below
            results.append(exc)

    jobs = [
        ("tiny-sd", "1024x1024"),
        ("tiny-sdxl", "1024x1024"),
        ("tiny-flux", "512x512"),
        ("tiny-sd", "256x256"),
        ("tiny-sd", "64x64"),
        ("tiny-flux", "64x64"),
    ]
    threads = [threading.Thread(target=generate, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the big ones are now running
    started = time.monotonic()
    health = httpx.get(f"{server.url}/health", timeout=5)
    answered = time.monotonic()
    for thread in threads:
        thread.join(timeout=120)
    assert health.status_code == 200
    assert answered - started < 2.0
    assert all(isinstance(result, tuple) for result in results), results
    assert sorted(size for _, size in results) == sorted(tuple(map(int, s.split("x"))) for _, s in jobs)
    assert answered < max(done for done, _ in results), "health should answer while images are still being made"


# --- warm cache -------------------------------------------------------------------------------


def test_models_stay_warm_within_the_lru_bound(cache_dir: Path) -> None:
    from pipelines.contract.catalog import CATALOG
    from pipelines.contract.job import Job
    from pipelines.model_cache import ModelCache
    from pipelines.worker import Worker

    models = ModelCache([CATALOG["tiny-sd"], CATALOG["tiny-sdxl"]], cache_dir=cache_dir, device="cpu", max_loaded=1)
    worker = Worker(models)
    job = small_job()
    first = worker.run(job)
    pipe = models.get("tiny-sd").pipe
    assert models.get("tiny-sd").pipe is pipe  # warm: the same pipeline object, not a reload
    worker.run(Job(**{**job.__dict__, "model": "tiny-sdxl"}))
    assert models.loaded() == ["tiny-sdxl"]  # the least recently used went
    assert worker.run(job) == first  # reloaded on demand, same pixels for the same seed


def test_preload_loads_in_the_background_while_health_answers(make_settings) -> None:
    app = create_local_app(make_settings(models="tiny-sd,tiny-flux", preload=True))
    with TestClient(app) as api:
        assert api.get("/health").status_code == 200
        models = app.state.services.engine.worker.models
        deadline = time.monotonic() + 30
        while sorted(models.loaded()) != ["tiny-flux", "tiny-sd"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(models.loaded()) == ["tiny-flux", "tiny-sd"]


def test_a_malformed_alias_setting_is_refused_clearly() -> None:
    from pydantic import ValidationError

    from handlers.settings import ServerSettings

    with pytest.raises(ValidationError, match="is not name=model"):
        ServerSettings(model_aliases="dall-e-3")
