"""The prompt-embedding cache on or off, side by side in one run, on the CPU by default.

    python scripts/bench_prompt_cache.py [--models tiny-sd tiny-flux2 ...] [--size 256] [--rounds 5]

For each model, two Workers (the real ModelCache, Worker and encoder, in this process, no HTTP):
one with IMAGEGEN_PROMPT_CACHE_SIZE=0, one with 64. Each round, each worker runs a request whose
prompt it has seen (a new seed: the cache's case, "again") and one whose prompt is new ("new"),
the workers taking turns (each first every other round) so a busy machine weighs on both alike.
Prints the medians in seconds and on / off (lower is better), and how much a cached prompt's
embeddings hold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.contract.job import square_generation

MODELS = ["tiny-sd", "tiny-sdxl", "tiny-flux", "tiny-flux2", "tiny-zimage", "tiny-sd3", "tiny-qwen-image"]


def _held_bytes(value) -> int:
    """The bytes of the tensors in an encode_prompt result (a tensor, or a tuple of them)."""
    if hasattr(value, "element_size"):
        return value.element_size() * value.nelement()
    if isinstance(value, (list, tuple)):
        return sum(_held_bytes(each) for each in value)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from pipelines.contract.catalog import lookup
    from pipelines.model_cache import ModelCache
    from pipelines.optimize import Optimizations
    from pipelines.prompt_cache import prompt_cache
    from pipelines.worker import Worker

    cache_dir = Path(os.environ.get("IMAGEGEN_CACHE_DIR") or tempfile.mkdtemp(prefix="imagegen-bench-"))
    print(
        f"{args.size}x{args.size}, {args.steps} steps, on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'model':<16} {'again off s':>11} {'again on s':>10} {'on/off':>7} {'new off s':>10} {'new on s':>9} "
        f"{'on/off':>7} {'KiB/prompt':>10}"
    )
    for model in args.models:
        spec = lookup(model)
        workers = {
            size: Worker(
                ModelCache(
                    [spec],
                    cache_dir=cache_dir,
                    device=args.device,
                    max_loaded=1,
                    optimizations=Optimizations(prompt_cache_size=size),
                )
            )
            for size in (0, 64)
        }
        for worker in workers.values():  # loads and first runs are not what is measured
            worker.run(square_generation(spec.id, "a lighthouse at dusk", args.size, args.steps, 0))
        times: dict[tuple[str, int], list[float]] = {}
        for round_ in range(args.rounds):
            for case, prompt in (("again", "a lighthouse at dusk"), ("new", f"a harbour, take {round_}")):
                order = list(workers.items())  # which goes first alternates too: no order effect
                for size, worker in order if round_ % 2 else order[::-1]:
                    began = time.perf_counter()
                    worker.run(square_generation(spec.id, prompt, args.size, args.steps, round_ + 1))
                    times.setdefault((case, size), []).append(time.perf_counter() - began)
        cache = prompt_cache(workers[64].models.get(spec.id).pipe)
        held = _held_bytes(next(iter(cache._entries.values()))) if cache and cache._entries else 0
        m = {key: statistics.median(values) for key, values in times.items()}
        print(
            f"{model:<16} {m['again', 0]:>11.3f} {m['again', 64]:>10.3f} {m['again', 64] / m['again', 0]:>7.2f} "
            f"{m['new', 0]:>10.3f} {m['new', 64]:>9.3f} {m['new', 64] / m['new', 0]:>7.2f} {held / 1024:>10.0f}"
        )


if __name__ == "__main__":
    main()
