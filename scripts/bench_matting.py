"""What a transparent background costs per image: the matte beside the generation and the PNG
encode of the same images, measured side by side in one run (ratios, not absolute speeds).

    python scripts/bench_matting.py --model tiny-sd --size 256 --n 4 --runs 5 [--matting birefnet --device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.contract import pictures
from pipelines.contract.catalog import CATALOG
from pipelines.contract.job import Job
from pipelines.contract.matting import MATTING_MODELS
from pipelines.matting.matte import Matting
from pipelines.model_cache import ModelCache
from pipelines.worker import Worker


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--matting", default="tiny-matte", choices=list(MATTING_MODELS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "imagegen-bench")
    args = parser.parse_args()

    models = ModelCache([CATALOG[args.model]], cache_dir=args.cache_dir, device=args.device, max_loaded=1)
    matting = Matting(MATTING_MODELS[args.matting], args.cache_dir)
    worker = Worker(models, png_parameters=False, matting=matting)
    job = Job(
        task="generate",
        model=args.model,
        prompt="a red apple on a table",
        n=args.n,
        width=args.size,
        height=args.size,
        output_width=args.size,
        output_height=args.size,
        steps=args.steps,
        guidance=CATALOG[args.model].styles["natural"].guidance,
        seeds=tuple(range(args.n)),
    )
    images = [pictures.decode(data).convert("RGB") for data in worker.run(job).images]  # loads, warms up
    matting.cut_out(images, models.device)  # load and warm up the matte

    generate = _median(lambda: worker.run(job), args.runs)
    matte = _median(lambda: matting.cut_out(images, models.device), args.runs)
    encode = _median(lambda: [pictures.encode(image, "png") for image in images], args.runs)
    per_image = 1000 / args.n
    print(f"{args.model} {args.size}x{args.size}, {args.steps} steps, n={args.n}, {args.matting} on {models.device}:")
    print(f"  generate (incl. PNG encode): {generate * per_image:8.2f} ms/image")
    print(f"  matte:                       {matte * per_image:8.2f} ms/image  ({matte / generate:.2f}x the generation)")
    print(f"  PNG encode alone:            {encode * per_image:8.2f} ms/image  (matte / encode {matte / encode:.2f}x)")


if __name__ == "__main__":
    main()
