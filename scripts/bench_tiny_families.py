"""How tiny the tiny pipelines are: build + save, load, and one image.

    python scripts/bench_tiny_families.py [--families zimage,sd3,...] [--sizes 64,256,1024] [--repeat 3]

Per family (default: the newer ones): seconds to build and `save_pretrained`, seconds to load the folder back with
`DiffusionPipeline.from_pretrained` (as the app does), and the best-of-`repeat` milliseconds for
one 2-step text-to-image generation at each square size, on this machine's CPU (best, not median:
on a shared machine the other processes only ever add time). The first build pays the imports.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NEWER = ("zimage", "sd3", "qwen-image", "flux-kontext")


def _seconds(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(NEWER))
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import diffusers
    import torch
    import transformers

    from pipelines.families import TINY_BUILDERS

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{'family':<12}{'build+save s':>14}{'load s':>8}" + "".join(f"{f'{s}px ms':>11}" for s in sizes))
    for family in args.families.split(","):
        builder = TINY_BUILDERS[family]
        with tempfile.TemporaryDirectory() as folder:

            def build_and_save(builder=builder, folder=folder) -> None:  # bound now, called now
                with torch.random.fork_rng(devices=[]), torch.no_grad():
                    builder().save_pretrained(folder)

            build_s, _ = _seconds(build_and_save)
            load_s, pipe = _seconds(lambda: diffusers.DiffusionPipeline.from_pretrained(folder))
        pipe.set_progress_bar_config(disable=True)
        cells = []
        for size in sizes:
            extra = {"max_area": size * size} if family == "flux-kontext" else {}

            def generate(pipe=pipe, size=size, extra=extra) -> None:  # bound for this size
                pipe(prompt="a lighthouse", height=size, width=size, num_inference_steps=2, **extra)

            generate()  # warm-up: first calls allocate and pick kernels
            times = [_seconds(generate)[0] for _ in range(args.repeat if size <= 256 else 1)]
            cells.append(f"{min(times) * 1000:>11.0f}")
        print(f"{family:<12}{build_s:>14.2f}{load_s:>8.2f}" + "".join(cells))


if __name__ == "__main__":
    main()
