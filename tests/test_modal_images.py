"""What the Modal images carry, read offline from modal's own Image and Mount objects: every tracked
runtime file of our packages (package data too, or the playground is a 500), the CUDA build of
torch from a named index, and the settings a GPU snapshot needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from modal._utils.async_utils import synchronizer
from modal.image import _Image
from modal.mount import _Mount

import modal_app
from tests.conftest import ROOT


def _layers(image: Any) -> list[Any]:
    """The image and every object it is built from (base images, mounts), as modal holds them."""
    found, waiting = [], [synchronizer._translate_in(image)]
    while waiting:
        layer = waiting.pop()
        found.append(layer)
        if not isinstance(layer, _Mount) and layer._deps is not None:
            waiting.extend(layer._deps())
    return found


def shipped(image: Any) -> dict[str, Path]:
    """Container path -> local file, for the files the image's mounts carry (the mounts
    `add_local_python_source` adds are attached to every container that uses the image)."""
    return {
        str(remote): Path(local)
        for layer in _layers(image)
        if isinstance(layer, _Mount)
        for entry in layer.entries
        for local, remote in entry.get_files_to_upload()
    }


def build_commands(image: Any) -> list[str]:
    """The Dockerfile commands of the image's build steps, as modal would send them to its builder."""
    commands = []
    for layer in _layers(image):
        load = getattr(layer, "_load", None)
        if not isinstance(layer, _Image) or load is None or not load.__closure__:
            continue
        cells = dict(zip(load.__code__.co_freevars, (cell.cell_contents for cell in load.__closure__), strict=True))
        if cells.get("dockerfile_function") is not None:
            commands += cells["dockerfile_function"]("2025.06").commands
    return commands


def tracked_runtime_files() -> set[str]:
    """Our packages' files under version control, as container paths (tests and caches are not ours)."""
    listed = subprocess.run(
        ["git", "ls-files", "handlers", "pipelines"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {f"/root/{path}" for path in listed}


def test_both_images_carry_every_tracked_file_of_our_packages() -> None:
    tracked = tracked_runtime_files()
    assert "/root/handlers/playground/index.html" in tracked  # package data, not Python
    assert set(shipped(modal_app.web_image)) == tracked
    assert set(shipped(modal_app.gpu_image)) == tracked


_PLAYGROUND = """
import sys
from fastapi.testclient import TestClient
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.web import create_web_app
from handlers.settings import ServerSettings

class Files:  # the temp-image Volume: not reached by these pages
    pass

app = create_web_app(
    ServerSettings(api_keys="sk-test", storage_dir=sys.argv[1]), lambda model_id: object, Files(),
    ModalDeployment(models=["tiny-sd"]),
)
with TestClient(app, raise_server_exceptions=False) as http:
    page = http.get("/")
    print(page.status_code)
    import re
    linked = set(re.findall(r'(?:src|href)="(playground/[^"]+)"', page.text))
    script = http.get("/playground/playground.js").text
    imported = {"playground/" + name for name in re.findall(r'from "[.]/([^"]+[.]js)"', script)}
    for asset in sorted(linked | imported):
        print(asset, http.get("/" + asset).status_code)
"""


def test_the_playground_answers_from_the_shipped_files_alone(tmp_path: Path) -> None:
    """`GET /` through the front's app, imported from a folder holding only what the web image
    mounts: the page and each script and style it links answer 200."""
    root = tmp_path / "root"
    for remote, local in shipped(modal_app.web_image).items():
        target = root / remote.removeprefix("/root/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
    result = subprocess.run(
        [sys.executable, "-c", _PLAYGROUND, str(tmp_path / "images")],
        cwd=root,
        env={"PYTHONPATH": str(root), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first, *assets = result.stdout.split("\n")
    assert first == "200", result.stdout
    assets = [line for line in assets if line]
    assert assets and all(line.endswith(" 200") for line in assets), result.stdout


def test_the_gpu_image_installs_torch_from_the_cuda_13_index_in_its_own_step() -> None:
    installs = [command for command in build_commands(modal_app.gpu_image) if "uv pip install" in command]
    [torch_step] = [command for command in installs if "--index-url" in command]
    assert "--index-url https://download.pytorch.org/whl/cu130" in torch_step
    assert torch_step.split()[-2:] == ["torch==2.13.0", "torchvision==0.28.0"]  # the rest come from PyPI
    assert all("--extra-index-url" not in command for command in installs)


def test_the_gpu_image_can_serve_birefnet_without_replacing_its_torch() -> None:
    """BiRefNet's remote code imports torchvision, timm, kornia and einops; the step that installs
    them from PyPI repeats the torch pair's pins, so timm's unpinned torchvision cannot move torch."""
    installs = [command for command in build_commands(modal_app.gpu_image) if "uv pip install" in command]
    [pypi_step] = [command for command in installs if "--index-url" not in command and "timm" in command]
    packages = {word.split("==")[0]: word for word in pypi_step.split() if "==" in word}
    assert {"timm", "kornia", "einops"} <= set(packages)
    assert packages["torch"] == "torch==2.13.0" and packages["torchvision"] == "torchvision==0.28.0"
    assert "timm" not in " ".join(build_commands(modal_app.web_image))  # the front stays torch-free


def test_the_gpu_image_compiles_in_process_so_a_snapshot_holds_the_compiler() -> None:
    envs = [command for command in build_commands(modal_app.gpu_image) if command.startswith("ENV ")]
    assert "ENV TORCHINDUCTOR_COMPILE_THREADS=1" in envs
