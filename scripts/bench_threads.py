"""torch's CPU threads: a request's time with each thread count, idle and with a core kept busy.

    python scripts/bench_threads.py [--model tiny-sd] [--sizes 256 512] [--rounds 4]

The real Worker on a built-in tiny model, in this process. Each round runs one request with each
thread count in turn (so a noisy machine weighs on all alike), first on the machine as it is
("idle"), then with one spinning process per `--busy` ("busy": another program on a core). Prints
the median seconds per request and its ratio to torch's default of one thread per core (lower is
better). pipelines/threads.py picks its default from these figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.contract.job import square_generation


def _spin() -> None:
    while True:
        pass


def _measure(worker, model: str, sizes: list[int], counts: list[int], steps: int, rounds: int) -> dict:
    import torch

    times: dict[tuple[int, int], list[float]] = {(size, count): [] for size in sizes for count in counts}
    for round in range(rounds):
        for size in sizes:
            for count in counts:
                torch.set_num_threads(count)
                began = time.perf_counter()
                worker.run(square_generation(model, f"a lighthouse {round}", size, steps, round))
                times[(size, count)].append(time.perf_counter() - began)
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    from pipelines.contract.catalog import CATALOG
    from pipelines.model_cache import ModelCache
    from pipelines.threads import cores, default_threads
    from pipelines.worker import Worker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--busy", type=int, default=1, help="spinning processes in the busy phase (0: no busy phase)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    available = cores()
    counts = sorted({1, default_threads(available), available})
    cache_dir = args.cache_dir or Path(os.environ.get("IMAGEGEN_CACHE_DIR") or tempfile.mkdtemp())
    worker = Worker(ModelCache([CATALOG[args.model]], cache_dir=cache_dir, device="cpu"))
    worker.run(square_generation(args.model, "a lighthouse 0", min(args.sizes), 1, 0))  # load and warm up
    print(f"{args.model}, {args.steps} steps, {available} cores, median of {args.rounds} interleaved rounds")
    print(f"{'load':<6} {'size':>5} {'threads':>8} {'s/request':>10} {'vs ' + str(available) + ' threads':>14}")
    phases = [("idle", 0)] + ([("busy", args.busy)] if args.busy else [])
    for phase, spinners in phases:
        spinning = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(spinners)]
        for process in spinning:
            process.start()
        try:
            medians = _measure(worker, args.model, args.sizes, counts, args.steps, args.rounds)
        finally:
            for process in spinning:
                process.terminate()
        load = os.getloadavg()[0]
        for size in args.sizes:
            for count in counts:
                ratio = medians[(size, count)] / medians[(size, available)]
                print(f"{phase:<6} {size:>5} {count:>8} {medians[(size, count)]:10.3f} {ratio:13.2f}x")
        print(f"{'':<6} (load average {load:.1f} after the {phase} phase)")


if __name__ == "__main__":
    main()
