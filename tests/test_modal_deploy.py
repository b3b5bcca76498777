"""The operator's scripts: deploy.py's choices (checked offline), and the smoke test run for real
against a local server, which speaks the same API a deployment does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from handlers.hosts.modal.deployment import ModalDeployment
from scripts.deploy import deploy_env, parse_args
from scripts.smoke import run_smoke
from tests.conftest import API_KEY, ROOT, Server, start_server, stop_server


def deploy(*args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MODAL_", "IMAGEGEN_"))}
    return subprocess.run(
        [sys.executable, "scripts/deploy.py", *args, "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_flags_become_the_environment_modal_app_reads() -> None:
    args = parse_args(
        [
            "--models",
            "flux-schnell,sdxl-turbo",
            "--gpu",
            "flux-schnell=H200|H100",
            "--gpu",
            "sdxl-turbo=L40S",
            "--memory",
            "sdxl-turbo=20",
            "--snapshot",
            "cpu",
            "--buffer-containers",
            "1",
            "--min-containers",
            "1",
            "--scaledown-window",
            "600",
            "--proxy-auth",
            "--ttl",
            "900",
        ]
    )
    assert deploy_env(args) == {
        "IMAGEGEN_MODELS": "flux-schnell,sdxl-turbo",
        "IMAGEGEN_MODAL_GPUS": "flux-schnell=H200|H100,sdxl-turbo=L40S",
        "IMAGEGEN_MODAL_MEMORY_GIB": "sdxl-turbo=20",
        "IMAGEGEN_MODAL_SNAPSHOT": "cpu",
        "IMAGEGEN_MODAL_BUFFER_CONTAINERS": "1",
        "IMAGEGEN_MODAL_MIN_CONTAINERS": "1",
        "IMAGEGEN_MODAL_SCALEDOWN_WINDOW": "600",
        "IMAGEGEN_MODAL_PROXY_AUTH": "true",
        "IMAGEGEN_IMAGE_TTL_SECONDS": "900",
    }
    assert deploy_env(parse_args([])) == {}  # unset flags leave the environment (or the defaults) in charge


def test_a_dry_run_prints_the_plan_per_model() -> None:
    result = deploy("--models", "sdxl-turbo,flux-schnell", "--gpu", "flux-schnell=H200|H100", "--min-containers", "1")
    assert result.returncode == 0, result.stderr
    assert "modal run modal_app.py::download --models sdxl-turbo,flux-schnell" in result.stdout
    assert "sdxl-turbo on L4 (16 GiB RAM, 4 CPU): 1 warm, at most 4, idle 300 s, gpu snapshot" in result.stdout
    assert "flux-schnell on H200|H100 (48 GiB RAM, 4 CPU): 1 warm" in result.stdout


def test_bad_choices_are_refused_before_anything_is_created() -> None:
    for args, reason in [
        (("--models", "sdxl-turbo,/models/mine"), "must name catalog models"),
        (("--gpu", "sdxl-turbo=H1OO"), "unknown GPU 'H1OO'"),
        (("--gpu", "sdxl-turbo=L4|H1OO"), "unknown GPU 'H1OO'"),
        (("--memory", "sdxl-turbo=0"), "not between 1 and 1024 GiB"),
        (("--snapshot", "disk"), "invalid choice: 'disk'"),
        (("--gpu", "flux-schnell=H100"), "'flux-schnell', which is not served"),
        (("--scaledown-window", "1"), "--scaledown-window: Input should be greater than or equal to 2"),
        (("--min-containers", "3", "--max-containers", "2"), "min_containers (3) exceeds max_containers (2)"),
    ]:
        result = deploy(*args)
        assert result.returncode != 0, args
        assert reason in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_smoke_test_passes_against_a_live_server(server: Server) -> None:
    lines: list[str] = []
    assert run_smoke(server.url, API_KEY, "tiny-sd", size="64x64", out=lines.append), lines
    assert [line.split()[0] for line in lines[1:5]] == ["ok"] * 4
    assert [line.split()[3] for line in lines[2:5]] == ["cold", "warm", "warm"]
    assert any("URL fetched" in line for line in lines) and any("with mask" in line for line in lines)
    assert lines[-2].startswith("latency: cold first image ")


def test_the_smoke_test_reports_what_failed(server: Server) -> None:
    lines: list[str] = []
    assert not run_smoke(server.url, "sk-wrong", out=lines.append)
    assert lines[-1].startswith("FAIL") and "list_models" in lines[-1] and "AuthenticationError" in lines[-1]


def until(condition: Callable[[], bool], what: str, bound: float = 60.0) -> None:
    """Wait for `condition()` (a bound for a loaded machine, never a pause), or fail saying `what`."""
    given_up = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < given_up, f"the server never got there: {what}"
        time.sleep(0.02)


@contextmanager
def busy_server(cache_dir: Path, tmp_path: Path) -> Iterator[str]:
    """A real local server whose model is busy: one long job running, one filling the queue's
    only place, so a new request is told "not now" (429 queue_full, with Retry-After)."""
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_MAX_QUEUE": "1",
        "IMAGEGEN_API_KEYS": API_KEY,
    }
    process, url = start_server(env, tmp_path / "server.log")
    long_job = {"model": "tiny-sd", "prompt": "a long one", "size": "512x512", "num_inference_steps": 40}
    auth = {"Authorization": f"Bearer {API_KEY}"}
    busy = [
        threading.Thread(
            target=httpx.post,
            args=(f"{url}/v1/images/generations",),
            kwargs={"json": long_job, "headers": auth, "timeout": 120},
        )
        for _ in range(2)
    ]

    def model() -> dict:
        return httpx.get(f"{url}/health/ready", timeout=5).json()["models"]["tiny-sd"]

    def taken() -> int:
        state = model()
        return state["running"] + state["waiting"]

    try:
        until(lambda: model()["state"] == "ready", "preloaded")  # so what it answers is "busy", not "loading"
        for count, thread in enumerate(busy, 1):
            thread.start()
            until(lambda: taken() == count, f"{count} long job(s) taken")  # noqa: B023
        yield url
    finally:
        for thread in busy:
            if thread.ident:  # started
                thread.join()
        stop_server(process)


def test_the_smoke_test_waits_out_a_busy_server_as_told_and_reports_cold_apart(cache_dir: Path, tmp_path: Path) -> None:
    """A pool with no room answers "not now" with Retry-After (here a real local server with a
    one-place queue, kept full; on Modal, 503 `model_busy` while a first container starts): the
    smoke test waits as told, asks again, and says what it waited out."""
    with busy_server(cache_dir, tmp_path) as url:
        lines: list[str] = []
        assert run_smoke(url, API_KEY, "tiny-sd", size="64x64", cold_timeout=120, out=lines.append), lines
    cold = lines[2]
    assert " cold " in cold and "waited out" in cold and "x queue_full" in cold, lines
    assert "waited out" not in lines[3]  # warm by then
    assert lines[-2].startswith("latency: cold first image ")


def test_the_smoke_test_gives_up_when_the_wait_would_pass_its_budget(cache_dir: Path, tmp_path: Path) -> None:
    with busy_server(cache_dir, tmp_path) as url:
        lines: list[str] = []
        assert not run_smoke(url, API_KEY, "tiny-sd", size="64x64", cold_timeout=0.2, out=lines.append)
    assert lines[-1].startswith("FAIL") and "generate_url: RateLimitError" in lines[-1], lines


def test_autoscaling_targets_and_per_model_settings_are_checked() -> None:
    for settings, reason in [
        ({"gpu_max_inputs": 2, "gpu_target_inputs": 3}, "gpu_target_inputs (3) exceeds gpu_max_inputs (2)"),
        ({"memory_gib": {"flux-schnell": 40}}, "IMAGEGEN_MODAL_MEMORY_GIB names 'flux-schnell', which is not served"),
        ({"gpus": "sdxl-turbo=L4|"}, "unknown GPU '' for sdxl-turbo"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(reason)):
            ModalDeployment(models=["sdxl-turbo"], **settings)
    chosen = ModalDeployment(
        models=["sdxl-turbo", "flux-schnell"], gpus="flux-schnell=H100|A100-80GB", memory_gib="sdxl-turbo=20"
    )
    assert chosen.gpus_for("flux-schnell") == ["H100", "A100-80GB"] and chosen.gpus_for("sdxl-turbo") == ["L4"]
    assert (chosen.memory_mib_for("sdxl-turbo"), chosen.memory_mib_for("flux-schnell")) == (20 * 1024, 48 * 1024)
    assert chosen.class_name("flux-schnell") == "ImageWorker_flux_schnell"
