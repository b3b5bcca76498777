"""The benchmark scripts keep running (their numbers go in closing notes, not in assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _run(script: str, *args: str, cache_dir: Path) -> str:
    env = {**os.environ, "IMAGEGEN_CACHE_DIR": str(cache_dir)}
    result = subprocess.run(
        [sys.executable, f"scripts/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_encode_compares_the_encoders_before_and_now(cache_dir: Path) -> None:
    out = _run("bench_encode.py", "--size", "64", "--repeat", "1", "--batch", "2", cache_dir=cache_dir)
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == [
        *["png"] * 3,
        *["png-rgba"] * 3,
        *["png-smooth"] * 3,
        "jpeg",
        "jpeg",
        "webp",
        "webp",
        *["2xpng"] * 2,
        *["2xjpeg"] * 2,
    ]
    assert "Up + ISA-L + parameters (now)" in out and "side by side, encode_all (now)" in out


def test_bench_previews_compares_half_and_full_decodes(cache_dir: Path) -> None:
    out = _run("bench_previews.py", "--size", "128", "--repeat", "1", "--device", "cpu", cache_dir=cache_dir)
    assert "half-size decode" in out and "x faster" in out


def test_bench_batching_compares_on_and_off(cache_dir: Path) -> None:
    out = _run("bench_batching.py", "--sizes", "64", "--rounds", "1", "--concurrent", "2", cache_dir=cache_dir)
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("64 ")]
    assert len(rows) == 1 + 3  # the batching row, and the VAE decode at 2, 4 and 8 images
    assert "on/off" in out and "one image at a time / whole batch" in out


def test_bench_prompt_cache_compares_on_and_off(cache_dir: Path) -> None:
    out = _run("bench_prompt_cache.py", "--models", "tiny-sd", "--size", "64", "--rounds", "1", cache_dir=cache_dir)
    row = next(line.split() for line in out.splitlines() if line.startswith("tiny-sd "))
    assert len(row) == 8 and "KiB/prompt" in out


def test_bench_shutdown_times_a_sigterm_with_jobs_waiting(cache_dir: Path) -> None:
    out = _run("bench_shutdown.py", "--queued", "2", "--steps", "4", "--cache-dir", str(cache_dir), cache_dir=cache_dir)
    assert "exited" in out and "after SIGTERM" in out and "lost" not in out


def test_bench_tiny_families_times_build_and_generation(cache_dir: Path) -> None:
    out = _run("bench_tiny_families.py", "--families", "sd3", "--sizes", "64", "--repeat", "1", cache_dir=cache_dir)
    assert out.splitlines()[1].split()[0] == "sd3" and "64px ms" in out


def test_bench_volume_commits_compares_blocking_and_background_commits(cache_dir: Path) -> None:
    out = _run("bench_volume_commits.py", "--responses", "8", "--images", "2", "--commit-ms", "20", cache_dir=cache_dir)
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["before", "after"]
    assert "before/after: wall" in out


def test_bench_mcp_compares_an_mcp_call_with_the_http_api(cache_dir: Path) -> None:
    out = _run("bench_mcp.py", "--sizes", "64", "--rounds", "1", cache_dir=cache_dir)
    assert "MCP/HTTP b64" in out and "64x64" in out


def test_bench_matting_compares_the_matte_with_the_generation(cache_dir: Path) -> None:
    out = _run(
        "bench_matting.py",
        "--size",
        "64",
        "--n",
        "2",
        "--runs",
        "1",
        "--cache-dir",
        str(cache_dir),
        cache_dir=cache_dir,
    )
    assert "the generation" in out and "matte / encode" in out


def test_bench_credentials_compares_signing_with_encoding(cache_dir: Path) -> None:
    out = _run("bench_credentials.py", "--sizes", "64", "--runs", "1", cache_dir=cache_dir)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["png", "jpeg", "webp"]


def test_bench_threads_compares_thread_counts_idle_and_busy(cache_dir: Path) -> None:
    out = _run("bench_threads.py", "--sizes", "64", "--rounds", "1", "--busy", "1", cache_dir=cache_dir)
    assert "idle" in out and "busy" in out and "threads" in out


def test_jobs_db_size_reports_bytes_per_job(cache_dir: Path) -> None:
    out = _run("jobs_db_size.py", "--jobs", "50", cache_dir=cache_dir)
    assert "bytes a job" in out and "after the sweep (50 expired)" in out


def test_bench_jobs_compares_a_job_with_the_synchronous_call(cache_dir: Path) -> None:
    out = _run("bench_jobs.py", "--rounds", "1", "--cache-dir", str(cache_dir), cache_dir=cache_dir)
    assert "ratio job/sync" in out


def test_bench_plain_background_mattes_both_prompts_side_by_side(cache_dir: Path) -> None:
    out = _run(
        "bench_plain_background.py",
        *("--size", "64", "--seeds", "2", "--prompts", "1", "--steps", "1", "--device", "cpu"),
        *("--cache-dir", str(cache_dir)),
        cache_dir=cache_dir,
    )
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line and not line.startswith("(")}
    assert list(rows) == ["decisive", "edge", "subject", "generate", "matte"]
    assert all(len(values) >= 3 for values in rows.values())  # as asked, + plain background, their ratio
    assert 0 < float(rows["subject"][0]) < 1  # the tiny matte's subject is there, and not everything
    assert "not what a plain background does" in out  # tiny models say their numbers are not figures
