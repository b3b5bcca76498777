"""Streaming previews: our half-size decode against a full-size decode, side by side in one run.

    python scripts/bench_previews.py [--model tiny-sdxl] [--size 1024] [--repeat 5] [--device auto]

Decodes the same in-progress latents both ways through the model's real VAE and prints the
milliseconds per preview and the ratio. With the built-in tiny models the VAE is tiny too, so
the absolute numbers are small; the ratio is what a real VAE shows as well (a quarter of the
pixels through the same convolutions).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-sdxl")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    import torch

    from pipelines.contract.catalog import lookup
    from pipelines.contract.job import Job
    from pipelines.model_cache import ModelCache
    from pipelines.settings import EngineSettings
    from pipelines.worker import Worker

    spec = lookup(args.model)
    models = ModelCache([spec], cache_dir=EngineSettings().cache_dir, device=args.device, max_loaded=1)
    worker = Worker(models)
    model = models.get(spec.id)
    job = Job(
        task="generate",
        model=spec.id,
        prompt="x",
        n=1,
        width=args.size,
        height=args.size,
        output_width=args.size,
        output_height=args.size,
        steps=4,
        guidance=0.0,
        seeds=(1,),
        partial_images=1,
    )
    captured = []
    worker.run(job, on_partial=lambda event: None, cancelled=lambda: False)  # warm up
    model.family.generate(
        model.pipe,
        job,
        [torch.Generator().manual_seed(1)],
        on_step=lambda step, latents: captured.append(latents.clone()),
    )
    latents = captured[1]

    def half() -> None:
        model.family.preview(model.pipe, latents, job)

    def full() -> None:
        lat = latents
        if model.family.packed_latents:
            lat = model.pipe._unpack_latents(lat, job.height, job.width, model.pipe.vae_scale_factor)
        config = model.pipe.vae.config
        lat = lat / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        decoded = model.pipe.vae.decode(lat.to(model.pipe.vae.dtype), return_dict=False)[0]
        model.pipe.image_processor.postprocess(decoded.float(), output_type="pil")

    def median_ms(work) -> float:
        times = []
        with torch.inference_mode():
            for _ in range(args.repeat):
                began = time.perf_counter()
                work()
                times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000

    full_ms, half_ms = median_ms(full), median_ms(half)
    print(f"{spec.id} {args.size}x{args.size} on {models.device}, median of {args.repeat}")
    print(f"full-size decode {full_ms:8.1f} ms")
    print(f"half-size decode {half_ms:8.1f} ms   ({full_ms / half_ms:.2f}x faster)")


if __name__ == "__main__":
    main()
