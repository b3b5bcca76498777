"""Does asking the generator for a plain background first make better mattes? The same seeds rendered
with and without a plain-background suffix on the prompt, both matted, measured side by side.

    python scripts/bench_plain_background.py --model sdxl-turbo --matting birefnet --device cuda --size 1024 --seeds 16
    python scripts/bench_plain_background.py          # a smoke run on the tiny models (no real figures)

OpenAI's pipeline is said to prompt for a plain background before it cuts the subject out; the
server does not (it mattes what the prompt asked for). Matte quality proxies, per image, then the
median over the seeds:
- decisive: the share of pixels whose alpha is within 5% of 0 or 255 (a clean cut is mostly both),
- edge px: the soft band's width, as its pixels (alpha between those) per pixel of the subject's
  outline (alpha crossing 128): a crisp edge is 1-3 px, a hazy halo tens,
- subject: the share of opaque pixels (alpha >= 128), so an empty or full matte is not read as clean,
- generate and matte times per image.
Tiny random models cannot measure matte quality: their numbers only show the script runs. Real
figures need real weights (a generator and `birefnet`) and, in practice, a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pipelines.contract import pictures
from pipelines.contract.catalog import CATALOG
from pipelines.contract.job import Job
from pipelines.contract.matting import MATTING_MODELS
from pipelines.matting.matte import Matting
from pipelines.model_cache import ModelCache
from pipelines.worker import Worker

SUFFIX = ", centred, isolated on a plain uniform light grey background"
PROMPTS = ("a red apple", "a golden retriever sitting", "a ceramic teapot", "a woman with curly hair, portrait")


def matte_proxies(alpha: np.ndarray) -> dict[str, float]:
    """The proxies of one matte (uint8, H x W)."""
    soft = (alpha > 12) & (alpha < 243)
    inside = alpha >= 128
    outline = (inside[1:, :] != inside[:-1, :]).sum() + (inside[:, 1:] != inside[:, :-1]).sum()
    return {
        "decisive": float(1 - soft.mean()),
        "edge px": float(soft.sum() / outline) if outline else float("nan"),
        "subject": float(inside.mean()),
    }


def render_and_matte(worker: Worker, matting: Matting, job: Job) -> dict[str, float]:
    """Median proxies over the job's images, and its times per image (ms)."""
    began = time.perf_counter()
    images = [pictures.decode(data).convert("RGB") for data in worker.run(job).images]
    generated = time.perf_counter()
    cut = matting.cut_out(images, worker.models.device)
    matted = time.perf_counter()
    rows = [matte_proxies(np.asarray(image)[..., 3]) for image in cut]
    medians = {name: statistics.median(row[name] for row in rows) for name in rows[0]}
    return {
        **medians,
        "generate ms": (generated - began) * 1000 / len(images),
        "matte ms": (matted - generated) * 1000 / len(images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--matting", default="tiny-matte", choices=list(MATTING_MODELS))
    parser.add_argument("--suffix", default=SUFFIX)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, default=4, help="seeds per prompt")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help=f"how many of the {len(PROMPTS)} prompts")
    parser.add_argument("--steps", type=int, default=None, help='default: the model\'s "standard" quality')
    parser.add_argument("--device", default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "imagegen-bench")
    args = parser.parse_args()

    spec = CATALOG[args.model]
    models = ModelCache([spec], cache_dir=args.cache_dir, device=args.device, max_loaded=1)
    matting = Matting(MATTING_MODELS[args.matting], args.cache_dir)
    worker = Worker(models, png_parameters=False, matting=matting)

    def job(prompt: str) -> Job:
        return Job(
            task="generate",
            model=args.model,
            prompt=prompt,
            n=args.seeds,
            width=args.size,
            height=args.size,
            output_width=args.size,
            output_height=args.size,
            steps=args.steps or spec.steps["standard"],
            guidance=spec.styles["natural"].guidance,
            seeds=tuple(range(args.seeds)),
        )

    render_and_matte(worker, matting, job(PROMPTS[0]))  # loads and warms up both models
    # The two variants alternate prompt by prompt, so a machine slowing down hurts both alike.
    results: dict[str, list[dict[str, float]]] = {"as asked": [], "+ plain background": []}
    for prompt in PROMPTS[: args.prompts]:
        results["as asked"].append(render_and_matte(worker, matting, job(prompt)))
        results["+ plain background"].append(render_and_matte(worker, matting, job(prompt + args.suffix)))

    print(
        f"{args.model} {args.size}x{args.size}, {args.matting} on {models.device}, "
        f"{args.prompts} prompts x {args.seeds} seeds; suffix {args.suffix!r}"
    )
    print(f"{'median over prompts':22s} {'as asked':>10s} {'+ plain bg':>11s} {'plain/asked':>12s}")
    for name in results["as asked"][0]:
        asked, plain = (statistics.median(row[name] for row in results[variant]) for variant in results)
        print(f"{name:22s} {asked:10.3f} {plain:11.3f} {plain / asked if asked else float('nan'):12.2f}")
    if spec.source.startswith("tiny:") or MATTING_MODELS[args.matting].source.startswith("tiny:"):
        print("(tiny random models: these numbers show the script runs, not what a plain background does)")


if __name__ == "__main__":
    main()
