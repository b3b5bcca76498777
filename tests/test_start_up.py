"""Commands that answer at once: listing models and asking for help import neither torch nor the
web framework; `imagegen serve` answers /health while torch loads, names each served model whose
weights are absent with the command that fetches them, and has its default tiny model loaded
before the first request, without third-party notices a user cannot act on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, start_server, stop_server

HEAVY = ("torch", "diffusers", "transformers", "fastapi")


def imported_by(*args: str, env: dict[str, str]) -> tuple[set[str], str]:
    """The modules `imagegen ARGS` imports (python -X importtime's report), and what it printed."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "handlers.hosts.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {match.group(1) for match in re.finditer(r"^import time:.*\|\s+([\w.]+)$", result.stderr, re.M)}
    return modules, result.stdout


@pytest.mark.parametrize("args", [("models",), ("--help",), ("serve", "--help")])
def test_listing_models_and_help_import_neither_torch_nor_the_web_app(args: tuple[str, ...], tmp_path: Path) -> None:
    modules, out = imported_by(*args, env={"HF_HOME": str(tmp_path / "hf"), "IMAGEGEN_CACHE_DIR": str(tmp_path)})
    assert "pipelines.contract.catalog" in modules  # the report is read right
    assert not {module.split(".")[0] for module in modules} & set(HEAVY), sorted(
        m for m in modules if m.startswith(HEAVY)
    )
    assert ("sdxl-turbo" in out) if args == ("models",) else ("usage: imagegen" in out)


def test_serve_names_absent_weights_and_warms_the_default_tiny_model(cache_dir: Path, tmp_path: Path) -> None:
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(tmp_path / "images"),
    }
    log_path = tmp_path / "server.log"
    process, url = start_server(env, log_path, "--model", "tiny-sd", "sd-turbo", "sdxl-turbo")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = httpx.get(f"{url}/health/ready", timeout=30).json()["models"]
            if states["tiny-sd"]["state"] == "ready":
                break
            time.sleep(0.2)
        # No request was made: the default model was loaded as the server started.
        assert states["tiny-sd"]["state"] == "ready", states
        assert states["sd-turbo"]["state"] == "not_loaded"
        log = log_path.read_text()
        for absent in ("sd-turbo", "sdxl-turbo"):
            lines = [line for line in log.splitlines() if f"`imagegen pull {absent}`" in line]
            assert len(lines) == 1, log
        assert "`imagegen pull tiny-sd`" not in log
        assert "torchvision" not in log, log  # transformers' fallback notices, nothing a user can act on
        assert re.search(r"serving tiny-sd, sd-turbo, sdxl-turbo on cpu \(float32, \d+ CPU threads\)", log), log
    finally:
        stop_server(process)
