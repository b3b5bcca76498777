"""Dependencies run one way: both sides import the contract, neither imports the other.

Read from the source (every import statement, function bodies included), so an import that is
made lazily, or only on some path, counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import importlib
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


def imported_names(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str, str]]:
    """(line, module, name) for every `from module import name` in the file, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            base = package[: len(package) - node.level + 1] if node.level else []
            for alias in node.names:
                yield node.lineno, ".".join([*base, node.module]), alias.name


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


# What a family is handed rather than fetches: the loaded pipelines. The cache and the worker call
# the families, never the other way round.
FAMILY_CALLERS = ("pipelines.model_cache", "pipelines.worker", "pipelines.local_engine")


def family_of(module: str) -> str | None:
    """The family folder a module is in (`pipelines.families.<family>...`), or None."""
    parts = module.split(".")
    if len(parts) >= 4 and parts[:2] == ["pipelines", "families"]:
        return parts[2]
    return None


def forbidden_for_a_family(importer: str, imported: str, name: str | None) -> str | None:
    """Why a module of pipelines/families may not import `imported` (`name` from it), or None."""
    if not within(importer, "pipelines.families"):
        return None
    if within(imported, *FAMILY_CALLERS):
        return "a family never imports the model cache or the worker: it is handed the pipelines it runs"
    if not within(imported, "pipelines"):
        return None
    private = (name or "").startswith("_") or any(part.startswith("_") for part in imported.split(".")[2:])
    if private and family_of(imported) != family_of(importer) and not imported.endswith("__future__"):
        return "a family imports no other module's private names (the shared ones are public)"
    return None


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted([*root.glob("handlers/**/*.py"), *root.glob("pipelines/**/*.py")]):
        importer = module_name(path, root)
        for line, imported in imports(path, root):
            reason = forbidden(importer, imported) or forbidden_for_a_family(importer, imported, None)
            if reason:
                found.append(f"{path.relative_to(root)}:{line} imports {imported}: {reason}")
        for line, imported, name in imported_names(path, root):
            reason = forbidden_for_a_family(importer, imported, name)
            if reason and not within(imported, *FAMILY_CALLERS):  # those are reported above
                found.append(f"{path.relative_to(root)}:{line} imports {name} from {imported}: {reason}")
    return found


def test_dependencies_run_one_way() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("handlers/images/resolve.py", "from pipelines.worker import batch_key", "web side imports the model side"),
        ("handlers/images/resolve.py", "import torch", "never imports torch"),
        ("pipelines/worker.py", "from fastapi import Request", "never imports the web side"),
        ("pipelines/local_engine.py", "from handlers.http_errors import error_body", "never imports the web side"),
        ("pipelines/contract/job.py", "import fastapi", "the contract imports"),
        ("pipelines/contract/errors.py", "from pipelines.worker import Worker", "the contract imports"),
        ("pipelines/contract/catalog.py", "import torch", "the contract imports"),
        ("handlers/app.py", "from handlers.hosts.local import create_local_app", "only the hosts"),
        (
            "pipelines/families/base.py",
            "from pipelines.model_cache import LoadedModel",
            "never imports the model cache",
        ),
        ("pipelines/families/flux2/adapter.py", "import pipelines.worker", "never imports the model cache"),
        (
            "pipelines/families/zimage/tiny.py",
            "from pipelines.families.flux2.tiny import _transformer",
            "private names",
        ),
        (
            "pipelines/families/sd3/tiny.py",
            "from pipelines.families.tiny_parts import _QWEN3_CHAT_TEMPLATE",
            "private names",
        ),
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
    web = (
        "handlers.app, handlers.images.routes, handlers.images.resolve, handlers.hosts.modal.volume, "
        "handlers.hosts.modal.engine, handlers.hosts.modal.web"
    )
    assert _loaded_after(web, ("torch", "diffusers", "transformers")) == []


def test_the_model_side_imports_without_the_web_framework() -> None:
    model = "pipelines.worker, pipelines.local_engine, pipelines.model_cache, pipelines.families"
    assert _loaded_after(model, ("fastapi", "starlette", "handlers")) == []


def test_every_family_has_one_adapter_and_one_tiny_model() -> None:
    """The contract's family facts name the families; the catalog's tiny entries, the adapters and the
    tiny builders follow them, each family's folder under the same name."""
    from pipelines.contract.catalog import FAMILY_NAMES, TINY
    from pipelines.contract.families import FAMILY_FACTS
    from pipelines.families import ARCHITECTURES, FAMILIES, TINY_BUILDERS
    from pipelines.tiny import TINY_FAMILIES

    assert set(FAMILIES) == set(TINY_BUILDERS) == set(TINY_FAMILIES) == set(FAMILY_FACTS) == set(FAMILY_NAMES)
    assert [spec.family for spec in TINY] == list(FAMILY_NAMES)
    for name, adapter in FAMILIES.items():
        assert adapter.name == name
        folder = importlib.import_module(f"pipelines.families.{name.replace('-', '_')}")
        assert folder.ADAPTER is adapter and folder.build_tiny is TINY_BUILDERS[name]
    assert {arch.family for arch in ARCHITECTURES.values()} <= set(FAMILY_NAMES)
    pipelines = [pipeline for facts in FAMILY_FACTS.values() for pipeline in facts.pipelines]
    assert len(pipelines) == len(set(pipelines))  # a folder's pipeline class names one family
