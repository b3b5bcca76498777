"""Dependencies run one way: both sides import the contract, neither imports the other.

Read from the source (every import statement, function bodies included), so an import that is
made lazily, or only on some path, counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

WEB_FRAMEWORK = ("fastapi", "starlette", "uvicorn", "python_multipart")
MODEL_LIBRARIES = ("torch", "diffusers", "transformers", "accelerate", "safetensors")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:  # `from . import a, b` imports the modules a and b
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module


def within(module: str, *packages: str) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def room(module: str) -> str:
    """Which side a module of ours is on: its path says."""
    if within(module, "pipelines.contract"):
        return "contract"
    if within(module, "handlers.hosts"):
        return "hosts"
    if within(module, "handlers"):
        return "web"
    return "model"


def forbidden(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None if it may."""
    side = room(importer)
    if side == "contract":
        top = imported.split(".")[0]
        allowed = top in sys.stdlib_module_names or top in ("pydantic", "PIL") or within(imported, "pipelines.contract")
        return None if allowed else "the contract imports the standard library, pydantic and Pillow only"
    if within(imported, "handlers.hosts"):
        return None if side == "hosts" else "only the hosts (and modal_app.py) import the hosts"
    if side == "web" and within(imported, "pipelines") and not within(imported, "pipelines.contract"):
        return "the web side imports the model side only through the contract"
    if side == "web" and within(imported, *MODEL_LIBRARIES):
        return "the web side never imports torch, diffusers or transformers"
    if side == "model" and within(imported, "handlers", *WEB_FRAMEWORK):
        return "the model side never imports the web side or the web framework"
    return None


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted([*root.glob("handlers/**/*.py"), *root.glob("pipelines/**/*.py")]):
        importer = module_name(path, root)
        for line, imported in imports(path, root):
            reason = forbidden(importer, imported)
            if reason:
                found.append(f"{path.relative_to(root)}:{line} imports {imported}: {reason}")
    return found


def test_dependencies_run_one_way() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("handlers/jobs.py", "from pipelines.worker import batch_key", "web side imports the model side"),
        ("handlers/jobs.py", "import torch", "never imports torch"),
        ("pipelines/worker.py", "from fastapi import Request", "never imports the web side"),
        ("pipelines/local_engine.py", "from handlers.http_errors import error_body", "never imports the web side"),
        ("pipelines/contract/job.py", "import fastapi", "the contract imports"),
        ("pipelines/contract/errors.py", "from pipelines.worker import Worker", "the contract imports"),
        ("pipelines/contract/catalog.py", "import torch", "the contract imports"),
        ("handlers/app.py", "from handlers.hosts.local import create_local_app", "only the hosts"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, file: str, line: str, reason: str) -> None:
    """The check above can fail: the same tree with one forbidden import added (in a function
    body, where a lazy import would hide from a runtime check) is refused, naming the file."""
    for package in ("handlers", "pipelines"):
        for path in (ROOT / package).rglob("*.py"):
            copy = tmp_path / path.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(path.read_text())
    target = tmp_path / file
    target.write_text(target.read_text() + f"\n\ndef _sneaky() -> None:\n    {line}\n")
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(file) and reason in found[0], found


def _loaded_after(modules: str, watched: tuple[str, ...]) -> list[str]:
    code = f"import sys, {modules}\nprint(','.join(m for m in {watched!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_web_side_imports_without_torch_diffusers_or_transformers() -> None:
    """On Modal the web side is the small CPU-only front; its image has no torch at all."""
    web = ("handlers.app, handlers.routes.images, handlers.jobs, handlers.hosts.modal.volume, "
           "handlers.hosts.modal.engine, handlers.hosts.modal.web")
    assert _loaded_after(web, ("torch", "diffusers", "transformers")) == []


def test_the_model_side_imports_without_the_web_framework() -> None:
    model = "pipelines.worker, pipelines.local_engine, pipelines.model_cache, pipelines.families"
    assert _loaded_after(model, ("fastapi", "starlette", "handlers")) == []


def test_every_family_has_one_adapter_and_one_tiny_model() -> None:
    """The catalog names the families; the adapters and the tiny builders follow it, no list of their own."""
    from pipelines.contract.catalog import FAMILY_NAMES, TINY
    from pipelines.families import FAMILIES
    from pipelines.tiny import TINY_FAMILIES

    assert set(FAMILIES) == set(TINY_FAMILIES) == {spec.family for spec in TINY} == set(FAMILY_NAMES)
