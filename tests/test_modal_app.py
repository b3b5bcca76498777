"""modal_app.py offline: what it declares, the GPU classes run in a container faked at Modal's
boundary, and the deployed web app (handlers/hosts/modal/web.py) driven over HTTP.

`tests/modal_control_plane.py` stands in for Modal between the front and the GPU classes: the
real class's enter hooks and async methods run in a container of their own, calls are spawned and
cancelled as modal 1.6.4 does, and arguments, results and exceptions cross by pickling.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import c2pa
import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

import modal_app
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.engine import ModalEngine
from handlers.hosts.modal.gpu import fetch_weights
from handlers.hosts.modal.web import create_web_app
from handlers.http_errors import http_status
from pipelines.contract.catalog import CATALOG
from pipelines.contract.errors import APIError
from pipelines.contract.job import Job, Rendered
from pipelines.model_cache import ModelCache
from pipelines.warm_up import warm_up, warm_up_jobs
from pipelines.worker import Worker
from tests.conftest import API_KEY, ROOT, png, png_bytes
from tests.modal_control_plane import Container, Deployment, Dict, across
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise
from tests.test_modal_volume_store import SharedVolume


def gpu_instance(model_id: str) -> Any:
    """The user-class instance a GPU container of `model_id` holds (what `.local()` binds to)."""
    return modal_app.gpu_class(model_id)()._cached_user_cls_instance()


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
            "cpu": i.cpu, "memory_mib": i.memory_mib, "regions": i.regions,
            "max_inputs": i.concurrency_info.max_inputs if i.concurrency_info else None,
            "target_inputs": i.concurrency_info.target_inputs if i.concurrency_info else None,
            "web": None if i.web_info is None else {"unauthenticated": i.web_info.unauthenticated}}

print(json.dumps({
    "heavy": sorted(name for name in ("torch", "diffusers", "transformers") if name in sys.modules),
    "gpu": {model: info(m.gpu_class(model)().run) for model in m.deployment.models},
    "classes": sorted(name for name in vars(m) if name.startswith("ImageWorker_")),
    "web": info(m.web), "cleanup": info(m.cleanup), "download": info(m.download),
    "decisions": {"app": m.deployment.app_name, "models": m.deployment.models, "snapshot": m.deployment.snapshot,
                  "deadline": m.deployment.deadline_seconds,
                  "gpus": {model: m.deployment.gpus_for(model) for model in m.deployment.models},
                  "dtypes": {model: m.deployment.dtype_for(model) for model in m.deployment.models}},
    "gpu_env": m.GPU_ENV,
}))
"""


def describe(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("MODAL_", "IMAGEGEN_"))}
    result = subprocess.run(
        [sys.executable, "-c", _DESCRIBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "HOME": str(tmp_path), **env},
    )  # no ~/.modal.toml either
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_modal_app_imports_offline_and_declares_the_deployment(tmp_path: Path) -> None:
    app = describe(tmp_path)
    assert app["heavy"] == []  # the web front's import pulls in no torch/diffusers/transformers
    assert app["classes"] == ["ImageWorker_sdxl_turbo"]  # one class, one pool, per served model
    gpu, web = app["gpu"]["sdxl-turbo"], app["web"]
    assert gpu["gpus"] == [["L4", 1]]  # the catalog's GPU for sdxl-turbo
    # Resources for loading SDXL and encoding its images, not Modal's 0.125 core and 128 MiB.
    assert gpu["cpu"] == 4.0 and gpu["memory_mib"] == 1024 * CATALOG["sdxl-turbo"].host_memory_gib
    assert gpu["volumes"] == {"/weights": "imagegen-weights"}
    # Past the front's deadline (570 s), so the front, not the GPU's timeout, answers a long job.
    assert sorted(gpu["methods"]) == ["describe", "run", "stream"] and gpu["timeout"] == 600
    assert (gpu["max_inputs"], gpu["target_inputs"]) == (8, 4)  # room to batch a burst; scale out past 4
    assert web["gpus"] == [] and web["max_inputs"] >= 100
    # A request may run past Modal's 150 s web window (the SDKs follow its 303): the web function
    # outlives the front's deadline, which answers first.
    assert web["timeout"] == app["decisions"]["deadline"] + 60 and app["decisions"]["deadline"] > 150
    # The weights Volume holds the LoRA files the front checks requests against.
    assert web["volumes"] == {"/images": "imagegen-images", "/weights": "imagegen-weights"}
    assert "modal.Secret.from_name('imagegen')" in web["secrets"]
    assert web["web"] == {"unauthenticated": True}  # guarded by our API keys, not Modal's proxy
    assert app["cleanup"]["schedule"] == "Period(minutes=10)"
    assert app["cleanup"]["volumes"] == {"/images": "imagegen-images"} and app["cleanup"]["gpus"] == []
    assert app["download"]["volumes"] == {"/weights": "imagegen-weights"}
    assert "modal.Secret.from_name('imagegen')" in app["download"]["secrets"]


def test_deploy_time_knobs_reach_modal(tmp_path: Path) -> None:
    app = describe(
        tmp_path,
        IMAGEGEN_MODELS="flux-schnell,sd-turbo",
        IMAGEGEN_MODAL_TIMEOUT="123",
        IMAGEGEN_MODAL_GPUS="flux-schnell=H100|A100-80GB",
        IMAGEGEN_MODAL_MEMORY_GIB="sd-turbo=12",
        IMAGEGEN_MODAL_CPU="2.5",
        IMAGEGEN_MODAL_REGIONS="us-east,us-west",
        IMAGEGEN_MODAL_GPU_MAX_INPUTS="2",
        IMAGEGEN_MODAL_GPU_TARGET_INPUTS="1",
        IMAGEGEN_MODAL_PROXY_AUTH="1",
        IMAGEGEN_MODAL_APP_NAME="img",
        IMAGEGEN_MODAL_SNAPSHOT="off",
    )
    # (with snapshots off the classes declare no snap=True hook, which Modal would refuse)
    flux, sd = app["gpu"]["flux-schnell"], app["gpu"]["sd-turbo"]
    assert flux["gpus"] == [["H100", 1], ["A100-80GB", 1]]  # a fallback list: Modal tries them in order
    assert sd["gpus"] == [["L4", 1]]
    assert (flux["memory_mib"], sd["memory_mib"]) == (1024 * CATALOG["flux-schnell"].host_memory_gib, 12 * 1024)
    assert flux["cpu"] == sd["cpu"] == 2.5 and flux["regions"] == ["us-east", "us-west"]
    assert (flux["timeout"], flux["max_inputs"], flux["target_inputs"]) == (123, 2, 1)
    assert app["web"]["web"] == {"unauthenticated": False}  # Modal's proxy auth now guards it
    assert app["web"]["volumes"] == {"/images": "img-images", "/weights": "img-weights"}


def test_a_gpu_container_decides_as_the_deploy_did(tmp_path: Path) -> None:
    """Re-imported with nothing but the GPU classes' environment (what their containers see), the
    deployment makes the deploy-time decisions: the GPUs (hence the dtype), the snapshot mode, the
    app's name."""
    deployed = describe(
        tmp_path,
        IMAGEGEN_MODELS="flux-schnell,sd-turbo",
        IMAGEGEN_MODAL_GPUS="sd-turbo=L4|T4",
        IMAGEGEN_MODAL_SNAPSHOT="cpu",
        IMAGEGEN_MODAL_APP_NAME="img",
    )
    assert deployed["decisions"]["dtypes"] == {"flux-schnell": "bfloat16", "sd-turbo": "float16"}  # a T4 may serve it
    assert deployed["decisions"]["snapshot"] == "cpu"
    in_container = describe(tmp_path, **deployed["gpu_env"])
    assert in_container["decisions"] == deployed["decisions"]


def test_a_models_file_adds_models_to_a_deploy_and_its_containers_see_them(tmp_path: Path) -> None:
    """The operator's own entries: checked at deploy time, each given its class, its GPU and RAM; the
    containers get the file's text in their environment, so they decide from the same entries."""
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        '[models.house]\nlike = "sdxl-turbo"\nsource = "hub:me/house-sdxl"\n'
        'revision = "0123456789abcdef0123456789abcdef01234567"\ngpu = "A100-80GB"\n'
        'host_memory_gib = 40\ndescription = "Our house style"\n'
    )
    deployed = describe(tmp_path, IMAGEGEN_MODELS="house,sd-turbo", IMAGEGEN_MODELS_FILE=str(models_file))
    assert deployed["classes"] == ["ImageWorker_house", "ImageWorker_sd_turbo"]
    house = deployed["gpu"]["house"]
    assert house["gpus"] == [["A100-80GB", 1]] and house["memory_mib"] == 40 * 1024
    assert "IMAGEGEN_MODELS_FILE" not in deployed["gpu_env"]  # a path on this machine; its text travels
    models_file.unlink()  # the containers never read it
    in_container = describe(tmp_path, **deployed["gpu_env"])
    assert in_container["decisions"] == deployed["decisions"]


def test_the_front_serves_the_models_files_entries(make_settings, shared: SharedVolume, tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text('[models.house]\nlike = "tiny-sd"\ndescription = "Our house style"\n')
    deployment = ModalDeployment(models=["house"], models_file=models_file, proxy_auth=True)
    settings = make_settings(models="house", models_file=models_file, storage_dir=tmp_path / "images")
    # No GPU is called here: the classes (declared from the deploy's own environment) are not needed.
    with TestClient(
        create_web_app(settings, lambda model_id: None, shared.mount(tmp_path / "images"), deployment)
    ) as http:
        listed = http.get("/v1/models").json()["data"]
    assert [(model["id"], model["description"]) for model in listed] == [("house", "Our house style")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[models.mine]\nlike = "sd-turbo"\nsource = "/models/mine"\n', "'source'"),  # no such path here
        ('[models.mine]\nlike = "sd-turbo"\nsource = "/"\n', "loads from a path on this machine"),
        ('[models.mine]\nsource = "tiny:sd"\nfamily = "sd"\ndescription = "d"\nfamliy = "x"\n', "famliy"),
    ],
)
def test_a_bad_models_file_stops_the_deploy_naming_the_field(text: str, says: str, tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(text)
    with pytest.raises(ValueError, match=says):
        ModalDeployment(models=["mine"], models_file=models_file)


def test_why_one_class_per_model_a_gpu_list_cannot_be_given_per_call() -> None:
    """modal 1.6.4 takes a fallback list only where a class is declared: `with_options(gpu=…)`
    takes one GPU, so each model's list lives on a class of its own."""
    from modal.exception import InvalidError

    worker = modal_app.gpu_class("tiny-sd")
    worker.with_options(gpu="H100")  # one GPU per call: fine
    with pytest.raises(InvalidError, match="Invalid GPU config"):
        worker.with_options(gpu=["H100", "A100-80GB"])


# --- the GPU class, in a container faked at Modal's boundary ---------------------------------


@pytest.fixture(scope="module")
def gpu_env(cache_dir: Path) -> Iterator[None]:
    """What the GPU container's environment provides: where the weights (here: tiny models) are,
    and the app's cancellation Dict (faked at Modal's boundary: the real one would call Modal)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMAGEGEN_CACHE_DIR", str(cache_dir))
        patch.setattr(modal_app, "cancelled", Dict())
        yield


def job(**fields: Any) -> Job:
    defaults = dict(
        task="generate",
        model="tiny-sd",
        prompt="a lighthouse",
        n=2,
        width=64,
        height=48,
        output_width=64,
        output_height=48,
        steps=2,
        guidance=0.0,
        seeds=(3, 4),
    )
    return Job(**{**defaults, **fields})


@pytest.fixture
def gpus(gpu_env: None) -> Iterator[Deployment]:
    deployment = Deployment(gpu_instance)
    yield deployment
    deployment.close()


def remote(deployment: Deployment, *jobs: Job, whole: bool = False) -> list[Any]:
    """Each job spawned on its model's class at once, then every outcome (its images, or the
    error; `whole`: what crossed the wire, images and usage)."""

    async def spawn_all() -> list[Any]:
        calls = [await deployment.gpu_class(each.model)().run.spawn.aio(each) for each in jobs]
        return await asyncio.gather(*(call.get.aio() for call in calls), return_exceptions=True)

    outcomes = asyncio.run(spawn_all())
    return outcomes if whole else [each.images if isinstance(each, Rendered) else each for each in outcomes]


def test_the_gpu_class_loads_in_its_enter_hooks_and_makes_real_images(gpus: Deployment, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    [first] = remote(gpus, job())
    assert [png(image).size for image in first] == [(64, 48), (64, 48)]
    assert first[0] != first[1]
    hooks = [record.getMessage() for record in caplog.records if record.getMessage().startswith("tiny-sd ")]
    assert hooks == ["tiny-sd loaded on cpu", "tiny-sd serving on cpu"]  # snap=True, then snap=False
    caplog.clear()
    assert remote(gpus, job()) == [first]  # warm: no second load, and the same seeds, the same pixels
    [rendered] = remote(gpus, job(), whole=True)  # the usage counted on the GPU comes back with them
    assert rendered.images == first and rendered.usage.output_tokens == 2 * (64 // 8) * (48 // 8)
    assert not any("loaded" in record.getMessage() for record in caplog.records)


def test_a_gpu_container_says_what_it_runs_on_in_its_start_log_and_when_asked(gpus: Deployment, caplog) -> None:
    """Driver, CUDA runtime and GPU (here: none, on a CPU build), and whether it was restored
    from a snapshot: what `scripts/deploy.py --verify` reads live."""
    caplog.set_level("INFO", logger="imagegen")

    async def ask() -> dict[str, Any]:
        call = await gpus.gpu_class("tiny-sd")().describe.spawn.aio()
        return await call.get.aio()

    described = asyncio.run(ask())
    assert described["model"] == "tiny-sd" and described["restored"] is False
    assert "driver " in described["cuda"] and "CUDA runtime " in described["cuda"]
    assert "no CUDA GPU visible" in described["cuda"]  # the GPU's name, where there is one
    assert any(described["cuda"] in record.getMessage() for record in caplog.records)
    assert any("started without a snapshot" in record.getMessage() for record in caplog.records)


def test_the_gpu_class_streams_its_call_id_then_previews_then_images(gpus: Deployment) -> None:
    streamed = job(n=1, seeds=(3,), steps=4, partial_images=2)

    async def read() -> list[Any]:
        return [item async for item in gpus.gpu_class("tiny-sd")().stream.remote_gen.aio(streamed)]

    started, *events = asyncio.run(read())
    assert started.call_id in gpus.plane.calls  # what the front cancels it by
    assert [(e.kind, e.partial_index) for e in events] == [("partial", 0), ("partial", 1), ("completed", None)]
    assert png(events[-1].data).size == (64, 48)


def test_a_burst_in_a_warm_container_shares_pipeline_calls(gpus: Deployment) -> None:
    """The container hosts the local engine's queue and batch window: jobs that arrive while the
    GPU is busy go through together."""
    burst = [job(n=1, seeds=(seed,), steps=8) for seed in range(6)]
    results = remote(gpus, *burst)
    assert all(len(images) == 1 for images in results)
    worker = gpus.containers["tiny-sd"].instance.gpu_model.worker
    calls = worker.batch_sizes("tiny-sd")
    assert sum(size * count for size, count in calls.items()) == 6
    assert sum(calls.values()) < 6 and max(calls) > 1  # fewer pipeline calls than jobs
    [alone] = remote(gpus, job(n=1, seeds=(4,), steps=8))[0]
    # Sharing a call changed no picture: remade alone, the same seed differs by float noise at most
    # (a batch sums in another order; see the README on `seed`), as tests/test_load.py checks locally.
    assert levels_apart(alone, results[4][0]) <= 2


def levels_apart(first: bytes, second: bytes) -> int:
    """The largest difference of one channel of one pixel between two images of the same size."""
    a, b = png(first).convert("RGB"), png(second).convert("RGB")
    assert a.size == b.size
    return max(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True))


# How long a test waits for something a GPU container does before calling it a failure: a bound,
# never a pause (each wait ends at the event it waits for), generous for a loaded machine.
WAIT = 30.0


def eventually(found: Callable[[], Any]) -> Any:
    """What `found()` gives once it gives something (asked until WAIT has passed), else None."""
    given_up = time.monotonic() + WAIT
    while not (result := found()) and time.monotonic() < given_up:
        time.sleep(0.02)
    return result or None


def stopped_at(caplog) -> int | None:
    """The step at which the GPU's run stopped (waiting up to WAIT for the news), or None."""

    def steps() -> list[int]:
        return [
            int(found.group(1))
            for record in caplog.records
            if (found := re.search(r"stopped tiny-sd after step (\d+) of ", record.getMessage()))
        ]

    found = eventually(steps)
    return found[0] if found else None


def test_a_caller_who_hangs_up_stops_the_steps_on_the_gpu(gpus: Deployment, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    engine = ModalEngine({"tiny-sd": gpus.gpu_class("tiny-sd")}, deadline_seconds=120, function_call=gpus.plane.from_id)
    remote(gpus, job(n=1, seeds=(1,)))  # warm (the load is not the point here)
    worker = gpus.containers["tiny-sd"].instance.gpu_model.worker
    container = gpus.containers["tiny-sd"]

    async def hang_up() -> None:
        request = asyncio.ensure_future(engine.run(job(n=1, seeds=(1,), steps=100_000)))
        async with asyncio.timeout(WAIT):
            while sum(worker.batch_sizes("tiny-sd").values()) < 2:  # its pipeline call has begun
                await asyncio.sleep(0.01)
        request.cancel()  # what handlers/disconnect.py does when the client goes
        await asyncio.gather(request, return_exceptions=True)
        await engine.close()

    asyncio.run(hang_up())
    step = stopped_at(caplog)
    assert step is not None and step < 100_000  # long before its deadline, 120 s away
    # Modal cancelled that one input's task, not the container.
    assert eventually(lambda: container.cancelled) and len(container.cancelled) == 1
    assert remote(gpus, job(n=1, seeds=(1,)))[0]  # which goes on serving


def test_a_run_past_its_deadline_is_busy_and_stops_on_the_gpu(gpus: Deployment, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    gpus.gpu_class("tiny-sd")()  # a warm container: the 1 s deadline is for the run, not a cold start
    gpus.containers["tiny-sd"].entered.result(timeout=WAIT)
    engine = ModalEngine({"tiny-sd": gpus.gpu_class("tiny-sd")}, deadline_seconds=1.0, function_call=gpus.plane.from_id)

    async def too_slow() -> APIError:
        try:
            await engine.run(job(n=1, seeds=(1,), steps=100_000))
        except APIError as exc:
            return exc
        finally:
            await engine.close()
        raise AssertionError("answered")

    assert asyncio.run(too_slow()).code == "model_busy"
    step = stopped_at(caplog)
    assert step is not None and step < 100_000


def test_a_job_past_its_deadline_is_skipped_on_the_gpu(gpus: Deployment, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    [outcome] = remote(gpus, job(deadline=1.0))  # long past: queued behind a cold start, say
    assert isinstance(outcome, APIError) and outcome.code == "cancelled"
    assert any("deadline passed before it started" in r.getMessage() for r in caplog.records)


def test_a_failed_load_raises_from_the_enter_hook_in_a_form_that_crosses_the_wire(gpu_env: None) -> None:
    broken = modal_app.ImageWorker()
    broken.model_id = "no-such-model"
    container = Container(broken)
    with pytest.raises(APIError) as caught:
        container.entered.result(timeout=30)
    arrived = across(caught.value)
    assert (http_status(arrived), arrived.code, arrived.param) == (404, "model_not_found", "model")
    container.exit()


def test_the_warm_up_runs_each_task_the_model_serves(cache_dir: Path, caplog) -> None:
    caplog.set_level("INFO", logger="imagegen")
    # tiny-qwen-image: a model that cannot take one step warms up with the fewest it takes.
    for model_id, tasks in (
        ("tiny-sd", ["generate", "variation"]),
        ("tiny-flux2", ["generate", "variation"]),
        ("tiny-qwen-image", ["generate", "variation"]),
    ):
        spec = CATALOG[model_id]
        assert [each.task for each in warm_up_jobs(spec)] == tasks
        worker = Worker(ModelCache([spec], cache_dir=cache_dir, device="cpu"))
        warm_up(worker, spec)
        assert sum(worker.batch_sizes(model_id).values()) == 2
    edits_only = CATALOG["sdxl-inpainting"]
    assert [each.task for each in warm_up_jobs(edits_only)] == ["variation"]


# --- the deployed web app over HTTP, Modal faked at its boundary ----------------------------


class Front:
    """One web container of the deployment, with the SDK pointed at it."""

    def __init__(self, settings: Any, volume: SharedVolume, gpus: Deployment, signing: Any = None) -> None:
        # In a deployment IMAGEGEN_MODELS reaches both the front's settings and the deployment's.
        self.app = create_web_app(
            settings,
            gpus.gpu_class,
            volume.mount(settings.storage_dir),
            ModalDeployment(models=settings.models),
            signing_store=signing,
            function_call=gpus.plane.from_id,
        )
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.sdk = OpenAI(api_key=API_KEY, base_url="http://testserver/v1", http_client=self.http, max_retries=0)


@pytest.fixture(scope="module")
def shared() -> SharedVolume:
    return SharedVolume()


@pytest.fixture(scope="module")
def pools(gpu_env: None) -> Iterator[Deployment]:
    deployment = Deployment(gpu_instance)
    yield deployment
    deployment.close()


@pytest.fixture(scope="module")
def front(
    make_settings, gpu_env: None, shared: SharedVolume, pools: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Front]:
    settings = make_settings(
        models="tiny-sd,sd-turbo", api_keys=API_KEY, storage_dir=tmp_path_factory.mktemp("front-a")
    )
    front = Front(settings, shared, pools)
    with front.http:
        yield front


def test_generate_returns_a_url_that_fetches_the_image(front: Front) -> None:
    response = front.sdk.images.generate(model="tiny-sd", prompt="a harbour", size="128x64")
    fetched = front.http.get(response.data[0].url)  # no key, as a browser
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert png(fetched.content).size == (128, 64)


def test_b64_json_and_seeds_behave_as_locally(front: Front) -> None:
    def make(seed: int, n: int) -> list[bytes]:
        response = front.sdk.images.generate(
            model="dall-e-3", prompt="a boat", size="64x64", n=n, response_format="b64_json", extra_body={"seed": seed}
        )
        return [base64.b64decode(item.b64_json) for item in response.data]

    first = make(7, 2)
    assert [png(image).size for image in first] == [(64, 64), (64, 64)] and first[0] != first[1]
    [again] = make(8, 1)  # the second image of n=2, remade alone: as tests/test_api_today.py checks locally
    assert levels_apart(again, first[1]) <= 1


def test_an_edit_with_a_mask_keeps_every_other_pixel(front: Front) -> None:
    original = noise((96, 64))
    response = front.sdk.images.edit(
        model="tiny-sd",
        prompt="a red door",
        response_format="b64_json",
        image=("photo.png", png_bytes(original), "image/png"),
        mask=("mask.png", png_bytes(mask_with_hole(original.size)), "image/png"),
    )
    result = png(base64.b64decode(response.data[0].b64_json))
    box = changed_box(original, result)
    assert result.size == (96, 64) and box is not None and inside(box, HOLE)


def test_a_streamed_generation_crosses_the_boundary(front: Front) -> None:
    events = list(
        front.sdk.images.generate(
            model="tiny-sd",
            prompt="x",
            size="64x64",
            stream=True,
            partial_images=1,
            extra_body={"num_inference_steps": 3},
        )
    )
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert png(base64.b64decode(events[-1].b64_json)).size == (64, 64)


def test_another_front_container_serves_the_url_through_the_volume_api(
    front: Front, make_settings, shared: SharedVolume, pools: Deployment, tmp_path: Path
) -> None:
    url = front.sdk.images.generate(model="tiny-sd", prompt="x", size="64x64").data[0].url
    other = Front(make_settings(models="tiny-sd", api_keys=API_KEY, storage_dir=tmp_path), shared, pools)
    with other.http:
        fetched = other.http.get(url)
    assert fetched.status_code == 200 and png(fetched.content).size == (64, 64)
    assert url.rsplit("/", 1)[1] in shared.reads


def test_every_front_container_signs_with_the_deployments_one_identity(
    make_settings, shared: SharedVolume, pools: Deployment, tmp_path: Path
) -> None:
    """No IMAGEGEN_C2PA_CERT/KEY: two fronts, each with its own disk (as two containers have), sign
    with the one local identity the first put in the deployment's Dict."""
    signing, signers = Dict(), []
    for name in ("a", "b"):
        settings = make_settings(models="tiny-sd", api_keys=API_KEY, storage_dir=tmp_path / name)
        container = Front(settings.model_copy(update={"cache_dir": tmp_path / f"cache-{name}"}), shared, pools, signing)
        with container.http:
            made = container.sdk.images.generate(model="tiny-sd", prompt="x", size="64x64", response_format="b64_json")
        reader = c2pa.Reader("image/png", io.BytesIO(base64.b64decode(made.data[0].b64_json)))
        assert reader.get_validation_state() == "Valid"
        signers.append(reader.get_active_manifest()["signature_info"])
    assert signers[0]["cert_serial_number"] == signers[1]["cert_serial_number"]
    assert signing.writes == 1 and not any((tmp_path / f"cache-{name}" / "c2pa").exists() for name in "ab")


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


def test_the_front_serves_the_mcp_tools_behind_the_keys(front: Front) -> None:
    """/mcp on the deployed app: the same endpoint, its tools run on the GPU pools (stateless, so
    any front container answers any call)."""
    arguments = {"prompt": "a harbour", "model": "tiny-sd", "size": "128x64", "num_inference_steps": 1}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "generate_image", "arguments": arguments},
    }
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
    keyless = front.http.post("/mcp", json=call, headers=headers)
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "invalid_api_key"
    answer = front.http.post("/mcp", json=call, headers={**headers, "authorization": f"Bearer {API_KEY}"})
    events = [json.loads(line[len("data: ") :]) for line in answer.text.splitlines() if line.startswith("data: ")]
    result = next(event["result"] for event in events if event.get("id") == 1)
    assert not result["isError"]
    image = result["content"][0]
    assert image["mimeType"] == "image/png" and png(base64.b64decode(image["data"])).size == (128, 64)


def test_a_model_missing_from_the_weights_volume_is_a_503_that_says_how_to_fetch_it(front: Front) -> None:
    response = front.http.post(
        "/v1/images/generations",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"model": "sd-turbo", "prompt": "x"},
    )
    assert response.status_code == 503
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "modal run modal_app.py::download --models sd-turbo" in error["message"]


def test_the_front_refuses_to_start_open_unless_proxy_auth_guards_it(
    make_settings, shared: SharedVolume, tmp_path: Path
) -> None:
    settings = make_settings(models="tiny-sd", storage_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"IMAGEGEN_API_KEYS is empty.*IMAGEGEN_MODAL_PROXY_AUTH=1"):
        create_web_app(settings, modal_app.gpu_class, shared.mount(tmp_path), ModalDeployment(models=settings.models))
    guarded = create_web_app(
        settings, modal_app.gpu_class, shared.mount(tmp_path), ModalDeployment(models=settings.models, proxy_auth=True)
    )
    with TestClient(guarded) as http:
        assert http.get("/v1/models").json()["data"][0]["id"] == "tiny-sd"


def test_fetching_weights_takes_catalog_and_matting_models_only(cache_dir: Path) -> None:
    deployment = ModalDeployment(models=["tiny-sd"])
    assert fetch_weights(deployment, ["tiny-sd"], cache_dir) == [str(cache_dir / "tiny" / "sd-v1")]  # built already
    # What transparent backgrounds need goes onto the weights Volume the same way (`--models birefnet`).
    [matte] = fetch_weights(deployment, ["tiny-matte"], cache_dir)
    assert (Path(matte) / "config.json").exists()
    with pytest.raises(ValueError, match="unknown model 'my-model'"):
        fetch_weights(deployment, ["my-model"], cache_dir)


def test_deploy_time_settings_reach_the_containers_but_keys_stay_in_the_secret(monkeypatch) -> None:
    for name, value in {
        "IMAGEGEN_MODELS": " flux-schnell , tiny-sd",
        "IMAGEGEN_MODEL_ALIASES": "dall-e-3=tiny-sd",
        "IMAGEGEN_API_KEYS": "sk-local",
        "IMAGEGEN_MODAL_GPUS": "flux-schnell=H200",
        "IMAGEGEN_TORCH_COMPILE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    deployment = ModalDeployment()
    assert deployment.forwarded_env() == {
        "IMAGEGEN_MODELS": "flux-schnell,tiny-sd",
        "IMAGEGEN_MODEL_ALIASES": "dall-e-3=tiny-sd",
        "IMAGEGEN_MODAL_GPUS": "flux-schnell=H200",
        "IMAGEGEN_TORCH_COMPILE": "false",
    }
    # The GPUs each model's class asks Modal for, and so what it loads in.
    assert (deployment.gpus_for("flux-schnell"), deployment.gpus_for("tiny-sd")) == (["H200"], ["T4"])
    assert (deployment.dtype_for("flux-schnell"), deployment.dtype_for("tiny-sd")) == ("bfloat16", "float16")


def test_loras_on_the_weights_volume_reach_the_gpu_through_the_front(
    make_settings,
    gpu_env: None,
    shared: SharedVolume,
    pools: Deployment,
    cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The front checks a request's LoRAs against the folder it mounts; the GPU class loads the file
    the Job names (one Volume, one path, in both containers)."""
    from tests.test_lora import _save_lora

    loras = tmp_path_factory.mktemp("weights-loras")
    _save_lora("sd", cache_dir, loras / "ink.safetensors", seed=1)
    settings = make_settings(
        models="tiny-sd", api_keys=API_KEY, lora_dir=loras, storage_dir=tmp_path_factory.mktemp("front-lora")
    )
    front = Front(settings, shared, pools)
    with front.http:

        def make(**extra) -> bytes:
            response = front.sdk.images.generate(
                model="tiny-sd",
                prompt="a harbour",
                size="64x64",
                response_format="b64_json",
                extra_body={"seed": 3, **extra},
            )
            return png(base64.b64decode(response.data[0].b64_json)).tobytes()  # pixels: files differ in their C2PA

        plain = make()
        assert make(lora=[{"name": "ink"}]) != plain
        assert make() == plain
        assert [lora["name"] for lora in front.sdk.models.retrieve("tiny-sd").model_extra["loras"]] == ["ink"]
        with pytest.raises(openai.BadRequestError) as caught:
            make(lora=[{"name": "nope"}])
        assert caught.value.body["param"] == "lora"
