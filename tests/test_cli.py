"""The `imagegen` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import png


def imagegen(*args: str, cache_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-m", "handlers.hosts.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_generate_writes_pngs_without_a_server(cache_dir: Path, tmp_path: Path) -> None:
    result = imagegen("generate", "a lighthouse at dusk", "-o", "light.png", "--size", "128x64", "--n", "2",
                      "--seed", "3", "--model", "tiny-sdxl", cache_dir=cache_dir, cwd=tmp_path)
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
    result = imagegen("generate", "x", "-o", "f.png", "--model", str(folder), "--size", "512x512",
                      cache_dir=cache_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert png((tmp_path / "f.png").read_bytes()).size == (512, 512)
