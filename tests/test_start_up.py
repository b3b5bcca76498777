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

HEAVY = ("torch", "diffusers", "transformers", "fastapi", "starlette", "httpx", "mcp")


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


# The app starts (its lifespan runs) and answers /health in a process of its own, then says which
# of the slow imports it made by then.
_STARTS = """
import sys
from fastapi.testclient import TestClient
from handlers.hosts.local import LocalSettings, create_local_app

with TestClient(create_local_app(LocalSettings(cache_dir=sys.argv[1], storage_dir=sys.argv[2]))) as api:
    assert api.get("/health").status_code == 200
    print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & {"torch", "mcp", "mcp_types", "numpy"})))
"""


def test_the_app_answers_health_before_importing_torch_the_mcp_sdk_or_numpy(tmp_path: Path) -> None:
    """Each takes a tenth of a second to seconds to import on a busy machine: the first request that
    needs one imports it (MCP's is tested in test_mcp.py), and /health does not wait for them."""
    result = subprocess.run(
        [sys.executable, "-c", _STARTS, str(tmp_path / "cache"), str(tmp_path / "images")],
        cwd=ROOT,
        env={**os.environ, "HF_HOME": str(tmp_path / "hf")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [], result.stdout


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
