"""scripts/bench_gpu.py keeps working: its help, and its CPU mode end to end (tiny model, aot_eager
compile, through the real server too), writing the JSON the README's table is made from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _run(*args: str, cache_dir: Path) -> str:
    env = {**os.environ, "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    result = subprocess.run(
        [sys.executable, "scripts/bench_gpu.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_help_documents_the_benchmark(cache_dir: Path) -> None:
    out = _run("--help", cache_dir=cache_dir)
    for words in ("random weights", "baseline", "--server", "--tiny", "--variants", "--json", "p90", "PSNR"):
        assert words in out


def test_cpu_mode_measures_against_eager_and_writes_json(cache_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    out = _run(
        "--tiny",
        "--models",
        "tiny-sd",
        "--compile-backend",
        "aot_eager",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--batches",
        "1",
        "2",
        "--batch-runs",
        "1",
        "--server",
        "--concurrency",
        "1",
        "2",
        "--json",
        str(report),
        cache_dir=cache_dir,
    )
    assert "eager (baseline)" in out and "optimised: fuse_qkv+channels_last+torch_compile+prompt_cache" in out
    assert "the API adds" in out and "batching on" in out and "encode / denoise" in out
    result = json.loads(report.read_text())
    assert result["torch"] and result["diffusers"] and result["options"]["compile_backend"] == "aot_eager"
    (model,) = result["models"]
    eager, optimised = model["variants"]["eager"], model["variants"]["optimised"]
    for figures in (eager, optimised):
        assert figures["latency_s"]["runs"] == 2 and figures["latency_s"]["p90"] >= figures["latency_s"]["median"]
        assert set(figures["split_s"]) == {"text_encode", "denoise", "vae_decode", "encode"}
        assert figures["split_s"]["encode"] > 0 and figures["encode_before_s"] > 0
        assert set(figures["throughput"]) == {"1", "2"}
    assert optimised["psnr_db"] is not None and optimised["psnr_db"] > 40  # compiled ≈ eager
    server = model["server"]
    assert server["http_s"] > 0 and set(server["concurrency"]) == {"1", "2"}
    assert set(server["concurrency"]["2"]) == {"on", "off"}
