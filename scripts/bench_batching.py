"""Batching on vs off, side by side in one run: a lone request's latency and 8 at once.

    python scripts/bench_batching.py --sizes 256 512 --rounds 3

The real LocalEngine and Worker on a built-in tiny model (or any catalog id), in this process,
no HTTP. "off" is IMAGEGEN_MAX_BATCH_IMAGES=1; "on" is the engine's settings as given (the
defaults unless flags say otherwise). The two alternate round by round so a noisy machine
weighs on both alike; each figure is the median over the rounds, and every ratio is on / off
(latency: lower is better; throughput: higher is better).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.contract.job import square_generation


async def _measure(worker, settings, spec_id: str, size: int, steps: int, concurrent: int) -> tuple[float, float]:
    """(lone-request latency in seconds, median of `concurrent` in a row; images/s with `concurrent` at once)."""
    from pipelines.local_engine import LocalEngine

    engine = LocalEngine(worker, settings)
    await engine.start()
    try:
        lone = []
        for seed in range(concurrent):
            began = time.perf_counter()
            await engine.run(square_generation(spec_id, f"a lighthouse {seed}", size, steps, seed))
            lone.append(time.perf_counter() - began)
        began = time.perf_counter()
        await asyncio.gather(
            *(
                engine.run(square_generation(spec_id, f"a lighthouse {seed}", size, steps, seed))
                for seed in range(concurrent)
            )
        )
        throughput = concurrent / (time.perf_counter() - began)
    finally:
        await engine.close()
    return statistics.median(lone), throughput


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch-images", type=int, help="'on' setting (default: the engine's)")
    parser.add_argument("--max-batch-pixels", type=int, help="'on' setting (default: the engine's)")
    parser.add_argument("--batch-wait-ms", type=float, help="'on' setting (default: the engine's)")
    args = parser.parse_args(argv)

    import torch

    from pipelines.batching import batch_pixels
    from pipelines.contract.catalog import lookup
    from pipelines.model_cache import ModelCache
    from pipelines.settings import EngineSettings
    from pipelines.worker import Worker

    spec = lookup(args.model)
    cache_dir = Path(os.environ.get("IMAGEGEN_CACHE_DIR") or tempfile.mkdtemp(prefix="imagegen-bench-"))
    worker = Worker(ModelCache([spec], cache_dir=cache_dir, device=args.device, max_loaded=1))
    worker.models.get(spec.id)  # loads are not what is measured
    chosen = {
        name: value
        for name, value in (
            ("max_batch_images", args.max_batch_images),
            ("max_batch_pixels", args.max_batch_pixels),
            ("batch_wait_ms", args.batch_wait_ms),
        )
        if value is not None
    }
    on = EngineSettings(models=[spec.id], device=args.device, **chosen)
    off = on.model_copy(update={"max_batch_images": 1})
    print(
        f"{spec.id} on {worker.models.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.steps} steps, {args.concurrent} requests, median of {args.rounds} rounds"
    )
    pixels = on.max_batch_pixels or batch_pixels(worker.models.device)
    print(
        f"on: max_batch_images={on.max_batch_images} max_batch_pixels={pixels} batch_wait_ms={on.batch_wait_ms}; "
        "off: max_batch_images=1"
    )
    print(
        f"{'size':>5} {'lone off s':>10} {'lone on s':>10} {'on/off':>7} {'8x off img/s':>13} {'8x on img/s':>12} "
        f"{'on/off':>7}"
    )
    for size in args.sizes:
        asyncio.run(_measure(worker, on, spec.id, size, args.steps, 2))  # warm this size
        figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for name, settings in (("off", off), ("on", on)):
                figures[name].append(
                    asyncio.run(_measure(worker, settings, spec.id, size, args.steps, args.concurrent))
                )
        lone = {name: statistics.median(f[0] for f in runs) for name, runs in figures.items()}
        rate = {name: statistics.median(f[1] for f in runs) for name, runs in figures.items()}
        print(
            f"{size:>5} {lone['off']:>10.3f} {lone['on']:>10.3f} {lone['on'] / lone['off']:>7.2f} "
            f"{rate['off']:>13.1f} {rate['on']:>12.1f} {rate['on'] / rate['off']:>7.2f}"
        )
    _vae_table(worker.models.get(spec.id).pipe, args.sizes, args.rounds)


def _vae_table(pipe, sizes: list[int], rounds: int) -> None:
    """The VAE's decode of a batch: whole, or one image at a time (what the engine does on a CPU)."""
    import torch

    vae = pipe.vae
    print(f"\nVAE decode of a batch, median of {rounds}: one image at a time / whole batch")
    print(f"{'size':>5} {'images':>6} {'whole ms':>9} {'per image ms':>13} {'ratio':>6}")
    channels = vae.config.latent_channels
    sliced = getattr(vae, "use_slicing", False)
    try:
        for size in sizes:
            for images in (2, 4, 8):
                latents = torch.randn(images, channels, size // 8, size // 8, dtype=vae.dtype, device=vae.device)
                times: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(rounds):
                    for per_image in (False, True):
                        (vae.enable_slicing if per_image else vae.disable_slicing)()
                        began = time.perf_counter()
                        with torch.inference_mode():
                            vae.decode(latents)
                        times[per_image].append(time.perf_counter() - began)
                whole, apart = statistics.median(times[False]), statistics.median(times[True])
                print(f"{size:>5} {images:>6} {whole * 1000:>9.0f} {apart * 1000:>13.0f} {apart / whole:>6.2f}")
    finally:
        (vae.enable_slicing if sliced else vae.disable_slicing)()


if __name__ == "__main__":
    main()
