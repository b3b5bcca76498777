"""scripts/bench_gpu.py's command line: which models, sizes, options and variants to measure."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from scripts.bench_gpu_measure import TINY_MODELS


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height or width)


def parse(argv: list[str] | None, description: str) -> argparse.Namespace:
    """bench_gpu.py's command line (`description`: its docstring)."""
    from pipelines.families import ARCHITECTURES

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        nargs="+",
        help=f"architectures: {', '.join(ARCHITECTURES)} (default: all); "
        f"with --tiny, catalog tiny models: {', '.join(TINY_MODELS)}",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="the built-in tiny models on the CPU: a quick check "
        "that the benchmark works (64x64, 2 steps, 3 runs unless told), not a speed figure",
    )
    parser.add_argument("--size", type=_size, help="WxH (default: each model's own, 64x64 with --tiny)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: each model's own, 2 with --tiny)")
    parser.add_argument("--runs", type=int, help="timed runs per figure after the warm-up (default 10; 3 with --tiny)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument(
        "--batches", type=int, nargs="+", help="batch sizes for throughput (default 1 2 4 8; 1 2 with --tiny)"
    )
    parser.add_argument("--batch-runs", type=int, default=3, help="timed runs per batch size (default 3)")
    parser.add_argument("--compare", type=int, default=2, help="images per variant compared for drift (default 2)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if there is one), cuda, cuda:1, cpu")
    parser.add_argument("--dtype", help="bfloat16 (default on CUDA), float16, float32 (default on a CPU)")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        choices=("fbc", "taylorseer", "fp8"),
        help="optional, off-by-default options measured on top of the optimised pipeline",
    )
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out of 'optimised'")
    parser.add_argument(
        "--compile-mode",
        default="default",
        help="default, reduce-overhead (CUDA graphs: shapes must repeat), max-autotune, ...",
    )
    parser.add_argument("--compile-backend", default="inductor", help="inductor (default) or aot_eager")
    parser.add_argument("--compile-cache-dir", help="TORCHINDUCTOR_CACHE_DIR for the compiled kernels")
    parser.add_argument(
        "--attention-backend",
        default="auto",
        help="auto, or a diffusers backend (_native_cudnn, _native_flash, flash, sage...)",
    )
    parser.add_argument("--server", action="store_true", help="also through the real server, with batching on/off")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        help="concurrent requests in --server mode (default 1 2 4 8; 1 2 with --tiny)",
    )
    parser.add_argument("--batch-wait-ms", type=float, default=0.0, help="IMAGEGEN_BATCH_WAIT_MS in --server mode")
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get("IMAGEGEN_CACHE_DIR") or tempfile.gettempdir() + "/imagegen-bench",
        help="where --tiny builds its models",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default with --tiny: 1, which keeps a shared machine's noise down; else torch's own)",
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    args.models = args.models or (list(TINY_MODELS[:1]) if args.tiny else list(ARCHITECTURES))
    args.runs = args.runs or (3 if args.tiny else 10)
    args.threads = args.threads or (1 if args.tiny else None)
    args.batches = args.batches or ([1, 2] if args.tiny else [1, 2, 4, 8])
    args.concurrency = args.concurrency or ([1, 2] if args.tiny else [1, 2, 4, 8])
    known = TINY_MODELS if args.tiny else tuple(ARCHITECTURES)
    unknown = [name for name in args.models if name not in known]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(known)}")
    return args
