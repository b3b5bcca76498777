"""The `imagegen` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import png


def imagegen(*args: str, cache_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-m", "handlers.hosts.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_generate_writes_pngs_without_a_server(cache_dir: Path, tmp_path: Path) -> None:
    result = imagegen(
        "generate",
        "a lighthouse at dusk",
        "-o",
        "light.png",
        "--size",
        "128x64",
        "--n",
        "2",
        "--seed",
        "3",
        "--model",
        "tiny-sdxl",
        cache_dir=cache_dir,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert png((tmp_path / "light.png").read_bytes()).size == (128, 64)
    assert png((tmp_path / "light-1.png").read_bytes()).size == (128, 64)
    assert "seed 3" in result.stdout and "seed 4" in result.stdout


def test_generate_explains_bad_input(cache_dir: Path, tmp_path: Path) -> None:
    result = imagegen("generate", "x", "--size", "70x70", "--model", "tiny-sd", cache_dir=cache_dir, cwd=tmp_path)
    assert result.returncode != 0
    assert "Invalid size '70x70'" in result.stderr and "Traceback" not in result.stderr
    unknown = imagegen("generate", "x", "--model", "no-such-model", cache_dir=cache_dir, cwd=tmp_path)
    assert unknown.returncode != 0 and "unknown model 'no-such-model'" in unknown.stderr


def test_models_lists_the_catalog(cache_dir: Path, tmp_path: Path) -> None:
    result = imagegen("models", cache_dir=cache_dir, cwd=tmp_path)
    assert result.returncode == 0
    for model_id in ("tiny-sd", "tiny-sdxl", "tiny-flux", "sd-turbo", "sdxl-turbo", "sdxl-inpainting", "flux-schnell"):
        assert model_id in result.stdout


def test_a_local_diffusers_folder_can_be_served_by_path(cache_dir: Path, tmp_path: Path) -> None:
    folder = cache_dir / "tiny" / "sdxl-v1"
    result = imagegen(
        "generate", "x", "-o", "f.png", "--model", str(folder), "--size", "512x512", cache_dir=cache_dir, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert png((tmp_path / "f.png").read_bytes()).size == (512, 512)


def test_output_goes_where_and_as_what_the_name_says(cache_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    for name, kind in (("a.jpg", "JPEG"), ("b.webp", "WEBP"), ("c.png", "PNG")):
        result = imagegen(
            "generate", "x", "-o", name, "--size", "64x64", "--model", "tiny-sd", cache_dir=cache_dir, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        with Image.open(tmp_path / name) as written:
            assert written.format == kind
    for name, says in (
        ("missing/folder/out.png", "the folder missing/folder does not exist"),
        ("out.gif", "name it .png, .jpg or .webp"),
    ):
        refused = imagegen("generate", "x", "-o", name, "--model", "tiny-sd", cache_dir=cache_dir, cwd=tmp_path)
        assert refused.returncode != 0 and says in refused.stderr and "Traceback" not in refused.stderr
        assert "loading" not in refused.stderr  # refused before any model work


def test_a_device_this_machine_lacks_fails_at_once(cache_dir: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot be shown here")
    for command in (("generate", "x"), ("serve", "--port", "1")):
        result = imagegen(*command, "--device", "cuda", cache_dir=cache_dir, cwd=tmp_path)
        assert result.returncode != 0 and "torch sees no CUDA GPU here" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_models_table_lines_up(cache_dir: Path, tmp_path: Path) -> None:
    lines = imagegen("models", cache_dir=cache_dir, cwd=tmp_path).stdout.splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.startswith(("tiny-", "sd", "flux"))]
    for column in ("family", "tasks", "default size", "description"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column


def test_pull_builds_or_fetches_and_says_why_not(cache_dir: Path, tmp_path: Path) -> None:
    result = imagegen("pull", "tiny-sdxl", cache_dir=tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 0 and "tiny-sdxl: ready in" in result.stdout
    assert (tmp_path / "cache" / "tiny").is_dir()
    offline = imagegen("pull", "sd-turbo", cache_dir=tmp_path / "cache", cwd=tmp_path)  # HF_HUB_OFFLINE=1 here
    assert offline.returncode != 0 and "could not fetch sd-turbo" in offline.stderr
    assert "Traceback" not in offline.stderr


def test_pngs_say_how_they_were_made_unless_told_not_to(make_settings, tmp_path: Path) -> None:
    import base64

    from fastapi.testclient import TestClient

    from handlers.hosts.local import create_local_app

    body = {
        "model": "tiny-sd",
        "prompt": "a lighthouse",
        "negative_prompt": "fog",
        "size": "64x64",
        "seed": 11,
        "num_inference_steps": 3,
        "response_format": "b64_json",
    }
    with TestClient(create_local_app(make_settings(models="tiny-sd"))) as api:
        image = png(base64.b64decode(api.post("/v1/images/generations", json=body).json()["data"][0]["b64_json"]))
    assert image.info["parameters"] == (
        "a lighthouse\nNegative prompt: fog\nSteps: 3, CFG scale: 0.0, Seed: 11, "
        "Size: 64x64, Model: tiny-sd, Task: generate"
    )
    with TestClient(create_local_app(make_settings(models="tiny-sd", png_parameters=False))) as api:
        image = png(base64.b64decode(api.post("/v1/images/generations", json=body).json()["data"][0]["b64_json"]))
    assert "parameters" not in image.info
