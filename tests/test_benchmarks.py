"""The benchmark scripts keep running (their numbers go in closing notes, not in assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _run(script: str, *args: str, cache_dir: Path) -> str:
    env = {**os.environ, "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    result = subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_encode_compares_with_pillows_defaults(cache_dir: Path) -> None:
    out = _run("bench_encode.py", "--size", "64", "--repeat", "1", cache_dir=cache_dir)
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["png", "png", "jpeg", "jpeg", "webp", "webp"]


def test_bench_previews_compares_half_and_full_decodes(cache_dir: Path) -> None:
    out = _run("bench_previews.py", "--size", "128", "--repeat", "1", "--device", "cpu", cache_dir=cache_dir)
    assert "half-size decode" in out and "x faster" in out
