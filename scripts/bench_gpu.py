"""Full-size models on a GPU, optimised against plain diffusers eager bf16, side by side in one run.

    python scripts/bench_gpu.py --json bench.json                       # every architecture, on CUDA
    python scripts/bench_gpu.py --models flux-schnell sdxl-turbo --variants fbc fp8 --server
    python scripts/bench_gpu.py --tiny --json /tmp/bench.json          # CPU: the tiny models, seconds

No weights are downloaded: each model is built at full size from its published configs
(pipelines/families/<family>/architecture.py) with random weights, straight on the device in the benchmark's dtype.
Speed does not depend on the weights' values; what does (a step cache's hit rate, and so its gain
and its drift) is marked "random weights" in the output and must be re-measured on real ones.

For each model and size, first plain diffusers (eager, bf16, nothing applied: the baseline), then
the same pipeline with pipelines/optimize.py's options (the defaults for the device, compile and
all: `--no-compile` leaves it out), then each `--variants` on top (fbc, taylorseer: diffusers' step
caches; fp8: torchao dynamic quantisation, last because it cannot be undone):

- latency of one image (median and p90 over `--runs` after `--warmup` runs), split into text
  encode / denoise (the rest of the pipeline call) / VAE decode / PNG encode (the server's encoder);
  every run has its own prompt and seed, so the prompt cache does not flatter it: a repeated
  prompt is timed apart;
- throughput at each `--batches` size (images/s, PNG encode included), and peak GPU memory;
- drift: PSNR (dB) of each variant's images against the baseline's for the same prompts and seeds.

Every figure is printed with its ratio to the baseline (latency: lower is better; throughput:
higher). `--server` then serves the optimised pipeline through the real server (LocalEngine,
the FastAPI app under uvicorn on 127.0.0.1, `response_format=b64_json`) to show what the API adds,
and fires 1/2/4/8 concurrent requests with dynamic batching on (IMAGEGEN_MAX_BATCH_IMAGES=8) and
off (=1). `--json PATH` writes everything, with the device, versions and options, for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_gpu_measure import PROMPT, Clock, build_target, measure, psnr
from scripts.bench_gpu_options import parse
from scripts.bench_gpu_server import bench_server


def optimised(args: argparse.Namespace, **changes: Any) -> Any:
    from pipelines.optimize import Optimizations

    options = {
        "torch_compile": not args.no_compile,
        "compile_mode": args.compile_mode,
        "compile_backend": args.compile_backend,
        "attention_backend": args.attention_backend,
        "fuse_qkv": True,
        "channels_last": True,
        "prompt_cache_size": 64,
        "warm_up": True,
    }
    if args.compile_cache_dir:
        options["compile_cache_dir"] = args.compile_cache_dir
    options.update(changes)
    return Optimizations(**options)


def bench_model(name: str, args: argparse.Namespace, device: str, dtype: Any) -> dict[str, Any]:
    from pipelines import optimize

    clock = Clock(device)
    target = build_target(name, args, device, dtype)
    report: dict[str, Any] = {
        "model": name,
        "size": f"{target.size[0]}x{target.size[1]}",
        "steps": target.steps,
        "build_s": target.built_s,
        "variants": {},
    }
    from pipelines.families.full_size import parameter_counts

    report["parameters"] = parameter_counts(target.pipe)
    print(
        f"\n== {name} {report['size']}, {target.steps} steps: built in {target.built_s:.1f} s "
        f"({sum(report['parameters'].values()) / 1e6:,.1f} M parameters)",
        flush=True,
    )
    baseline = measure(target, args, clock)
    report["variants"]["eager"] = baseline
    _print_row("eager (baseline)", baseline, baseline, None)

    def warm() -> None:  # compiled for the benchmark's own shape
        target.generate(PROMPT.format("compile"), [0])

    began = time.perf_counter()
    applied = optimize.apply(target.pipe, optimised(args), device, warm_up=warm)
    setup = time.perf_counter() - began
    print(f"  applied {', '.join(applied)} in {setup:.1f} s (compile and warm-up included)", flush=True)
    optimised_result = measure(target, args, clock)
    optimised_result["applied"] = applied
    optimised_result["apply_and_warm_up_s"] = setup
    optimised_result["psnr_db"] = psnr(baseline["_images"], optimised_result["_images"])
    report["variants"]["optimised"] = optimised_result
    _print_row("optimised: " + "+".join(applied), optimised_result, baseline, optimised_result["psnr_db"])

    if args.server:  # the default optimised pipeline, before any variant changes it
        report["server"] = bench_server(target, args, clock)

    def recompile(**changes: Any) -> None:
        """The blocks compiled again around what a variant changed in them (a step cache's hook needs
        a graph break; fp8 swaps the weights' type), and warmed up."""
        if not args.no_compile:
            optimize.uncompile(target.pipe)
            optimize.compile_repeated_blocks(target.pipe, optimised(args, **changes))
            warm()

    for variant in sorted(args.variants, key=lambda name: name == "fp8"):  # fp8 last: it cannot be undone
        began = time.perf_counter()
        model = optimize.denoiser(target.pipe)
        if variant in ("fbc", "taylorseer"):
            if not hasattr(model, "enable_cache"):
                print(f"  {variant}: {type(model).__name__} has no step cache in diffusers; skipped")
                continue
            optimize.uncompile(target.pipe)
            optimize.add_step_cache(target.pipe, optimised(args, step_cache=variant))
            recompile(step_cache=variant)
        elif variant == "fp8":
            try:
                optimize.uncompile(target.pipe)
                optimize.quantize(target.pipe, optimised(args, quantize="fp8"))
            except optimize.OptimizationUnavailable as missing:
                print(f"  fp8: {missing}; skipped")
                continue
            recompile(quantize="fp8")
        setup = time.perf_counter() - began
        result = measure(target, args, clock)
        result["psnr_db"] = psnr(baseline["_images"], result["_images"])
        result["note"] = (
            "random weights: a step cache's hits (and so gain and drift) differ on real ones"
            if variant != "fp8"
            else "drift on random weights"
        )
        result["setup_s"] = setup
        report["variants"][f"optimised+{variant}"] = result
        _print_row(f"optimised+{variant}", result, baseline, result["psnr_db"])
        if variant in ("fbc", "taylorseer"):
            model.disable_cache()
            recompile()

    for each in report["variants"].values():
        each.pop("_images", None)
    target.pipe = None  # the next model needs the memory
    _free(device)
    return report


def _print_row(label: str, result: dict[str, Any], baseline: dict[str, Any], drift: float | None) -> None:
    def ratio(value: float | None, base: float | None) -> str:
        return f"{value / base:5.2f}x" if value and base else "   - "

    lat, base = result["latency_s"], baseline["latency_s"]
    split = "  ".join(
        f"{stage} {result['split_s'][stage] * 1000:7.1f} ms "
        f"({ratio(result['split_s'][stage], baseline['split_s'][stage])})"
        for stage in ("text_encode", "denoise", "vae_decode", "encode")
    )
    print(f"  {label}")
    print(
        f"    latency median {lat['median'] * 1000:8.1f} ms ({ratio(lat['median'], base['median'])})  "
        f"p90 {lat['p90'] * 1000:8.1f} ms ({ratio(lat['p90'], base['p90'])})  over {lat['runs']} runs"
    )
    print(f"    split: {split}")
    encode, denoise = result["split_s"]["encode"], result["split_s"]["denoise"]
    print(
        f"    encode / denoise {encode / denoise:5.2f}  (PNG: Up filter + ISA-L; Pillow level 1 "
        f"took {result['encode_before_s'] * 1000:.1f} ms: {result['encode_before_s'] / encode:.1f}x as long)"
    )
    if result.get("repeated_prompt_s"):
        print(
            f"    repeated prompt {result['repeated_prompt_s'] * 1000:8.1f} ms "
            f"({ratio(result['repeated_prompt_s'], baseline['repeated_prompt_s'])})"
        )
    for batch, figures in result["throughput"].items():
        memory = figures["peak_memory_gib"]
        base_figures = baseline["throughput"][batch]
        print(
            f"    batch {batch:>2}: {figures['images_per_s']:8.2f} img/s "
            f"({ratio(figures['images_per_s'], base_figures['images_per_s'])})"
            + (f"  peak {memory:6.2f} GiB ({ratio(memory, base_figures['peak_memory_gib'])})" if memory else "")
        )
    png = result["split_s"]["encode"] / baseline["split_s"]["encode"]
    if abs(png - 1) > 0.1:  # no option touches the PNG encoder: its ratio gauges the machine's own noise
        print(f"    noise: PNG encode, which no option changes, moved {png:.2f}x; the machine is not quiet")
    if drift is not None:
        print(f"    drift vs baseline: PSNR {drift:.1f} dB" + (f"  [{result['note']}]" if result.get("note") else ""))


def _in_thread(call: Callable[[], Any]) -> Any:
    """`call` on a thread of its own, as the server's Worker runs pipelines: on a loaded CPU the main
    thread's OpenMP pool was measured 10-40x slower than a worker thread's for the same call, which
    would make the server look faster than the pipeline it runs."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as failure:  # re-raised on the caller's thread
            outcome["failure"] = failure

    thread = threading.Thread(target=run, name="imagegen-bench")
    thread.start()
    thread.join()
    if "failure" in outcome:
        raise outcome["failure"]
    return outcome["value"]


def _free(device: str) -> None:
    """What a model held, given back before the next is built: compiled graphs keep their modules."""
    import gc

    import torch

    torch.compiler.reset()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv, __doc__)
    import diffusers
    import torch

    from pipelines.devices import pick_device

    device = pick_device("cpu" if args.tiny and args.device == "auto" else args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = (
        getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    )
    header = {
        "device": torch.cuda.get_device_name(device)
        if device.startswith("cuda")
        else f"{device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "dtype": str(dtype).removeprefix("torch."),
        "options": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "baseline": "plain diffusers, eager, nothing applied, same dtype, same pipeline object",
    }
    print(
        f"device {header['device']}; torch {header['torch']} (CUDA {header['cuda']}), diffusers "
        f"{header['diffusers']}, {header['dtype']}"
    )
    print("options: " + ", ".join(f"{key}={value}" for key, value in header["options"].items()))
    print(
        "ratios are against the baseline: plain diffusers eager in the same dtype (latency: lower is better, "
        "throughput: higher is better)"
    )
    reports = [_in_thread(lambda name=name: bench_model(name, args, device, dtype)) for name in args.models]
    result = {**header, "models": reports}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
