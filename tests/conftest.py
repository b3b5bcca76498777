"""Shared fixtures: tiny models built once per session, one in-process app, one real server."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Before anything imports huggingface_hub: nothing here may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
for name in list(os.environ):
    if name.startswith("IMAGEGEN_"):  # a developer's own settings must not leak into tests
        del os.environ[name]

import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from openai import OpenAI  # noqa: E402
from PIL import Image  # noqa: E402

from handlers.hosts.local import LocalSettings, create_local_app  # noqa: E402
from pipelines.tiny import TINY_FAMILIES  # noqa: E402
from pipelines.weights import tiny_model_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-test-key-0123456789"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with every family's tiny model built (once per session)."""
    path = tmp_path_factory.mktemp("cache")
    for family in TINY_FAMILIES:
        tiny_model_dir(family, path)
    return path


@pytest.fixture(scope="session")
def make_settings(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    def make(**overrides) -> LocalSettings:
        overrides.setdefault("storage_dir", tmp_path_factory.mktemp("images"))
        return LocalSettings(cache_dir=cache_dir, **overrides)

    return make


@pytest.fixture(scope="session")
def api(make_settings) -> Iterator[TestClient]:
    """The real app on the tiny models, in process, no keys."""
    with TestClient(create_local_app(make_settings()), raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Server:
    url: str
    storage_dir: Path
    log_path: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], log_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`imagegen serve` in a real process; returns once /health answers."""
    port = _free_port()
    with log_path.open("wb") as log:  # the child keeps its own handle
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.hosts.cli", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer /health in 60 s:\n{log_path.read_text()}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def server(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn process serving the tiny models behind an API key."""
    storage = tmp_path_factory.mktemp("server-images")
    log_path = tmp_path_factory.mktemp("server-log") / "server.log"
    env = {
        "IMAGEGEN_CACHE_DIR": str(cache_dir),
        "IMAGEGEN_STORAGE_DIR": str(storage),
        "IMAGEGEN_API_KEYS": f"sk-other-key,{API_KEY}",
    }
    process, url = start_server(env, log_path)
    yield Server(url=url, storage_dir=storage, log_path=log_path)
    stop_server(process)


@pytest.fixture(scope="session")
def client(server: Server) -> OpenAI:
    """The official SDK, as a user would point it at us (no retries, so errors show at once)."""
    return OpenAI(api_key=API_KEY, base_url=f"{server.url}/v1", max_retries=0, timeout=120)


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
