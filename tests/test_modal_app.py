"""modal_app.py offline: what it declares, the GPU class run in-process, and the deployed web app
driven over HTTP with only Modal's control plane faked, at its boundary.

`LocalPools` stands in for the GPU class as the web container sees it: `.remote.aio` and
`.remote_gen.aio` run the real class's `.local()` (enter hooks included) and carry arguments,
results and exceptions across by pickling, as Modal does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

import modal_app
from handlers.http_errors import http_status
from pipelines.contract.errors import APIError
from pipelines.contract.job import Job
from tests.conftest import API_KEY, ROOT, png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise
from tests.test_modal_volume_store import SharedVolume

# Modal's own notice that `.local()` runs without the class's Volume mounted: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:The ImageWorker.*executing locally:UserWarning")

# --- the Modal boundary, faked --------------------------------------------------------------


def across(value: Any) -> Any:
    """A value after a trip over Modal's wire (pickled there, unpickled here)."""
    return pickle.loads(pickle.dumps(value))


def received(exc: BaseException) -> BaseException:
    """A remote exception as Modal's client raises it: unpickled, or ExecutionError if it cannot be."""
    from modal.exception import ExecutionError

    try:
        return across(exc)
    except Exception as failure:
        return ExecutionError(f"Could not deserialize remote exception due to local error:\n{failure}")


class Remote:
    def __init__(self, method: Any) -> None:
        self.method = method

    async def aio(self, *args: Any) -> Any:
        try:
            result = await asyncio.to_thread(self.method.local, *across(args))
        except Exception as exc:
            raise received(exc) from None
        return across(result)


class RemoteGen:
    def __init__(self, method: Any) -> None:
        self.method = method

    async def aio(self, *args: Any) -> AsyncIterator[Any]:
        done = object()
        try:
            events: Iterator[Any] = await asyncio.to_thread(self.method.local, *across(args))
        except Exception as exc:
            raise received(exc) from None
        try:
            while True:
                try:
                    event = await asyncio.to_thread(next, events, done)
                except Exception as exc:
                    raise received(exc) from None
                if event is done:
                    return
                yield across(event)
        finally:
            await asyncio.to_thread(events.close)  # what Modal does when the caller stops listening


class Method:
    def __init__(self, method: Any) -> None:
        self.remote = Remote(method)
        self.remote_gen = RemoteGen(method)


class Pool:
    """`ImageWorker.with_options(gpu=…)(model_id=…)` as the front sees it: one warm container."""

    def __init__(self, instance: Any) -> None:
        self.run = Method(instance.run)
        self.stream = Method(instance.stream)


class LocalPools:
    """The GPU class as the web container sees it; records the GPU each model's pool asked for."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.gpus: dict[str, str] = {}

    def with_options(self, *, gpu: str) -> Any:
        def pool(*, model_id: str) -> Pool:
            self.gpus[model_id] = gpu
            return Pool(self.cls(model_id=model_id))

        return pool


# --- what modal_app declares, imported with no Modal config and no network ------------------

_DESCRIBE = """
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import modal_app as m

def info(f):
    i = f.info()
    return {"gpus": i.gpus, "timeout": i.timeout, "schedule": i.schedule, "secrets": i.secrets,
            "volumes": {path: v.name for path, v in i.volumes.items()}, "methods": i.method_names,
            "max_inputs": i.concurrency_info.max_inputs if i.concurrency_info else None,
            "web": None if i.web_info is None else {"unauthenticated": i.web_info.unauthenticated}}

print(json.dumps({
    "heavy": sorted(name for name in ("torch", "diffusers", "transformers") if name in sys.modules),
    "gpu": info(m.ImageWorker(model_id="tiny-sd").run), "web": info(m.web),
    "cleanup": info(m.cleanup), "download": info(m.download),
    "decisions": {"app": m.deployment.app_name, "models": m.deployment.models,
                  "gpus": {model: m.deployment.gpu_for(model) for model in m.deployment.models},
                  "dtypes": {model: m.deployment.dtype_for(model) for model in m.deployment.models}},
    "gpu_env": m.GPU_ENV,
}))
"""


def describe(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("MODAL_", "IMAGEGEN_"))}
    result = subprocess.run([sys.executable, "-c", _DESCRIBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**clean, "HOME": str(tmp_path), **env})  # no ~/.modal.toml either
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_modal_app_imports_offline_and_declares_the_deployment(tmp_path: Path) -> None:
    app = describe(tmp_path)
    assert app["heavy"] == []  # the web front's import pulls in no torch/diffusers/transformers
    gpu, web = app["gpu"], app["web"]
    assert gpu["gpus"] == [["L4", 1]]  # the default model's (sdxl-turbo) GPU from the catalog
    assert gpu["volumes"] == {"/weights": "imagegen-weights"}
    assert gpu["methods"] == ["run", "stream"] and gpu["max_inputs"] == 4 and gpu["timeout"] == 300
    assert web["gpus"] == [] and web["max_inputs"] >= 100
    assert web["volumes"] == {"/images": "imagegen-images"}
    assert "modal.Secret.from_name('imagegen')" in web["secrets"]
    assert web["web"] == {"unauthenticated": True}  # guarded by our API keys, not Modal's proxy
    assert app["cleanup"]["schedule"] == "Period(minutes=10)"
    assert app["cleanup"]["volumes"] == {"/images": "imagegen-images"} and app["cleanup"]["gpus"] == []
    assert app["download"]["volumes"] == {"/weights": "imagegen-weights"}
    assert "modal.Secret.from_name('imagegen')" in app["download"]["secrets"]


def test_deploy_time_knobs_reach_modal(tmp_path: Path) -> None:
    app = describe(tmp_path, IMAGEGEN_MODELS="flux-schnell,sd-turbo", IMAGEGEN_MODAL_TIMEOUT="123",
                   IMAGEGEN_MODAL_GPU_MAX_INPUTS="2", IMAGEGEN_MODAL_PROXY_AUTH="1", IMAGEGEN_MODAL_APP_NAME="img")
    assert app["gpu"]["gpus"] == [["H100", 1]] and app["gpu"]["timeout"] == 123 and app["gpu"]["max_inputs"] == 2
    assert app["web"]["web"] == {"unauthenticated": False}  # Modal's proxy auth now guards it
    assert app["web"]["volumes"] == {"/images": "img-images"}


def test_a_gpu_container_decides_as_the_deploy_did(tmp_path: Path) -> None:
    """Re-imported with nothing but the GPU class's environment (what its container sees), the
    deployment makes the deploy-time decisions: a GPU override (hence the dtype), the app's name."""
    deployed = describe(tmp_path, IMAGEGEN_MODELS="flux-schnell,sd-turbo", IMAGEGEN_MODAL_GPUS="sd-turbo=T4",
                        IMAGEGEN_MODAL_APP_NAME="img")
    assert deployed["decisions"]["dtypes"] == {"flux-schnell": "bfloat16", "sd-turbo": "float16"}
    in_container = describe(tmp_path, **deployed["gpu_env"])
    assert in_container["decisions"] == deployed["decisions"]


# --- the GPU class, in process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_env(cache_dir: Path) -> Iterator[None]:
    """What the GPU container's environment provides: where the weights (here: tiny models) are."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEGEN_CACHE_DIR", str(cache_dir))
        yield


def job(**fields: Any) -> Job:
    defaults = dict(task="generate", model="tiny-sd", prompt="a lighthouse", n=2, width=64, height=48,
                    output_width=64, output_height=48, steps=2, guidance=0.0, seeds=(3, 4))
    return Job(**{**defaults, **fields})


def test_the_gpu_class_loads_in_its_enter_hooks_and_makes_real_images(gpu_env: None, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    worker = modal_app.ImageWorker(model_id="tiny-sd")
    first = worker.run.local(job())
    assert [png(image).size for image in first] == [(64, 48), (64, 48)]
    assert first[0] != first[1]
    hooks = [record.getMessage() for record in caplog.records if "tiny-sd" in record.getMessage()]
    assert hooks[-2:] == ["tiny-sd loaded on cpu", "tiny-sd serving on cpu"]  # snap=True, then snap=False
    caplog.clear()
    assert worker.run.local(job()) == first  # warm: no second load, and the same seeds, the same pixels
    assert not any("loaded" in record.getMessage() for record in caplog.records)


def test_the_gpu_class_streams_previews_then_images(gpu_env: None) -> None:
    streamed = job(n=1, seeds=(3,), steps=4, partial_images=2)
    events = list(modal_app.ImageWorker(model_id="tiny-sd").stream.local(streamed))
    assert [(e.kind, e.partial_index) for e in events] == [("partial", 0), ("partial", 1), ("completed", None)]
    assert png(events[-1].data).size == (64, 48)


def test_a_failed_load_raises_from_the_enter_hook_in_a_form_that_crosses_the_wire(gpu_env: None) -> None:
    with pytest.raises(APIError) as caught:
        modal_app.ImageWorker(model_id="no-such-model").run.local(job(model="no-such-model"))
    arrived = across(caught.value)
    assert (http_status(arrived), arrived.code, arrived.param) == (404, "model_not_found", "model")


# --- the deployed web app over HTTP, Modal faked at its boundary ----------------------------


class Front:
    """One web container of the deployment, with the SDK pointed at it."""

    def __init__(self, settings: Any, volume: SharedVolume, pools: LocalPools) -> None:
        # In a deployment IMAGEGEN_MODELS reaches both the front's settings and the deployment's.
        self.app = modal_app.create_web_app(settings, pools, volume.mount(settings.storage_dir),
                                            modal_app.ModalDeployment(models=settings.models))
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.sdk = OpenAI(api_key=API_KEY, base_url="http://testserver/v1", http_client=self.http, max_retries=0)


@pytest.fixture(scope="module")
def shared() -> SharedVolume:
    return SharedVolume()


@pytest.fixture(scope="module")
def pools() -> LocalPools:
    return LocalPools(modal_app.ImageWorker)


@pytest.fixture(scope="module")
def front(make_settings, gpu_env: None, shared: SharedVolume, pools: LocalPools,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    settings = make_settings(models="tiny-sd,sd-turbo", api_keys=API_KEY,
                             storage_dir=tmp_path_factory.mktemp("front-a"))
    front = Front(settings, shared, pools)
    with front.http:
        yield front


def test_generate_returns_a_url_that_fetches_the_image(front: Front, pools: LocalPools) -> None:
    response = front.sdk.images.generate(model="tiny-sd", prompt="a harbour", size="128x64")
    fetched = front.http.get(response.data[0].url)  # no key, as a browser
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert png(fetched.content).size == (128, 64)
    assert pools.gpus["tiny-sd"] == "T4"  # each model's pool on its catalog GPU


def test_b64_json_and_seeds_behave_as_locally(front: Front) -> None:
    def make(seed: int, n: int) -> list[bytes]:
        response = front.sdk.images.generate(model="dall-e-3", prompt="a boat", size="64x64", n=n,
                                             response_format="b64_json", extra_body={"seed": seed})
        return [base64.b64decode(item.b64_json) for item in response.data]

    first = make(7, 2)
    assert [png(image).size for image in first] == [(64, 64), (64, 64)] and first[0] != first[1]
    assert make(8, 1) == first[1:]


def test_an_edit_with_a_mask_keeps_every_other_pixel(front: Front) -> None:
    original = noise((96, 64))
    response = front.sdk.images.edit(
        model="tiny-sd", prompt="a red door", response_format="b64_json",
        image=("photo.png", png_bytes(original), "image/png"),
        mask=("mask.png", png_bytes(mask_with_hole(original.size)), "image/png"),
    )
    result = png(base64.b64decode(response.data[0].b64_json))
    box = changed_box(original, result)
    assert result.size == (96, 64) and box is not None and inside(box, HOLE)


def test_a_streamed_generation_crosses_the_boundary(front: Front) -> None:
    events = list(front.sdk.images.generate(model="tiny-sd", prompt="x", size="64x64", stream=True,
                                            partial_images=1, extra_body={"num_inference_steps": 3}))
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert png(base64.b64decode(events[-1].b64_json)).size == (64, 64)


def test_another_front_container_serves_the_url_through_the_volume_api(
        front: Front, make_settings, shared: SharedVolume, pools: LocalPools, tmp_path: Path) -> None:
    url = front.sdk.images.generate(model="tiny-sd", prompt="x", size="64x64").data[0].url
    other = Front(make_settings(models="tiny-sd", api_keys=API_KEY, storage_dir=tmp_path), shared, pools)
    with other.http:
        fetched = other.http.get(url)
    assert fetched.status_code == 200 and png(fetched.content).size == (64, 64)
    assert url.rsplit("/", 1)[1] in shared.reads


def test_errors_are_the_same_openai_errors(front: Front) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        front.sdk.images.generate(model="stable-diffusion-9", prompt="x")
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad_size:
        front.sdk.images.generate(model="tiny-sd", prompt="x", size="70x70")
    assert bad_size.value.body["param"] == "size"
    keyless = front.http.post("/v1/images/generations", json={"prompt": "x"})
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "invalid_api_key"
    assert front.http.get("/v1/temp-images/" + "A" * 31 + ".png").status_code == 404


def test_a_model_missing_from_the_weights_volume_is_a_500_that_says_so_and_not_to_retry(front: Front) -> None:
    response = front.http.post("/v1/images/generations", headers={"Authorization": f"Bearer {API_KEY}"},
                               json={"model": "sd-turbo", "prompt": "x"})
    assert response.status_code == 500
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "model_load_failed" and "sd-turbo" in error["message"]


def test_the_front_refuses_to_start_open_unless_proxy_auth_guards_it(make_settings, shared: SharedVolume,
                                                                     tmp_path: Path) -> None:
    settings = make_settings(models="tiny-sd", storage_dir=tmp_path)
    with pytest.raises(RuntimeError, match="IMAGEGEN_API_KEYS is empty.*IMAGEGEN_MODAL_PROXY_AUTH=1"):
        modal_app.create_web_app(settings, LocalPools(modal_app.ImageWorker), shared.mount(tmp_path),
                                 modal_app.ModalDeployment(models=settings.models))
    guarded = modal_app.create_web_app(settings, LocalPools(modal_app.ImageWorker), shared.mount(tmp_path),
                                       modal_app.ModalDeployment(models=settings.models, proxy_auth=True))
    with TestClient(guarded) as http:
        assert http.get("/v1/models").json()["data"][0]["id"] == "tiny-sd"


def test_fetching_weights_takes_catalog_models_only(cache_dir: Path) -> None:
    assert modal_app.fetch_weights(["tiny-sd"], cache_dir) == [str(cache_dir / "tiny" / "sd-v1")]  # built already
    with pytest.raises(ValueError, match="unknown model 'my-model'"):
        modal_app.fetch_weights(["my-model"], cache_dir)


def test_deploy_time_settings_reach_the_containers_but_keys_stay_in_the_secret(monkeypatch) -> None:
    for name, value in {"IMAGEGEN_MODELS": " flux-schnell , tiny-sd", "IMAGEGEN_MODEL_ALIASES": "dall-e-3=tiny-sd",
                        "IMAGEGEN_API_KEYS": "sk-local", "IMAGEGEN_MODAL_GPUS": "flux-schnell=H200"}.items():
        monkeypatch.setenv(name, value)
    deployment = modal_app.ModalDeployment()
    assert deployment.forwarded_env() == {"IMAGEGEN_MODELS": "flux-schnell,tiny-sd",
                                          "IMAGEGEN_MODEL_ALIASES": "dall-e-3=tiny-sd",
                                          "IMAGEGEN_MODAL_GPUS": "flux-schnell=H200"}
    assert (deployment.gpu_for("flux-schnell"), deployment.gpu_for("tiny-sd")) == ("H200", "T4")
