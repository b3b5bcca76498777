"""What scripts/bench_gpu.py measures, and how: one pipeline's latency (split by stage), throughput,
peak memory, and the drift of its images."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROMPT = "a lighthouse on a cliff at dusk, waves below, warm light in the window, run {}"
TINY_MODELS = ("tiny-sd", "tiny-sdxl", "tiny-flux", "tiny-flux2")


class Clock:
    """Wall time of what runs on the device: waits for it before reading the time."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda")
        self.sync: Callable[[], None] = torch.cuda.synchronize if self.cuda else (lambda: None)

    def now(self) -> float:
        self.sync()
        return time.perf_counter()


@contextmanager
def stages(pipe: Any, clock: Clock) -> Iterator[dict[str, float]]:
    """Seconds spent in the pipeline's text encode and VAE decode while inside (the rest is denoise)."""
    spent = {"text_encode": 0.0, "vae_decode": 0.0}

    def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = clock.now()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] += clock.now() - began

        return wrapper

    encode, decode = pipe.__dict__.get("encode_prompt"), pipe.vae.__dict__.get("decode")
    pipe.encode_prompt = timed("text_encode", pipe.encode_prompt)
    pipe.vae.decode = timed("vae_decode", pipe.vae.decode)
    try:
        yield spent
    finally:
        for owner, name, original in ((pipe, "encode_prompt", encode), (pipe.vae, "decode", decode)):
            if original is None:
                del owner.__dict__[name]
            else:
                setattr(owner, name, original)


class Target:
    """A pipeline to measure and how to call it: its size, steps, guidance and extra options."""

    def __init__(
        self,
        name: str,
        pipe: Any,
        size: tuple[int, int],
        steps: int,
        guidance: float,
        call_options: dict[str, Any],
        spec_id: str | None,
        family: str | None,
        built_s: float,
    ) -> None:
        self.name, self.pipe, self.size, self.steps, self.guidance = name, pipe, size, steps, guidance
        self.call_options, self.spec_id, self.family, self.built_s = call_options, spec_id, family, built_s

    def generate(self, prompt: str, seeds: list[int]) -> list[Any]:
        import torch

        width, height = self.size
        with torch.inference_mode():
            return self.pipe(
                prompt=prompt,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                width=width,
                height=height,
                num_images_per_prompt=len(seeds),
                output_type="pil",
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
                **self.call_options,
            ).images


def build_target(name: str, args: argparse.Namespace, device: str, dtype: Any) -> Target:
    began = time.perf_counter()
    if args.tiny:
        from pipelines.contract.catalog import CATALOG
        from pipelines.families import FAMILIES
        from pipelines.weights import weights_source

        spec = CATALOG[name]
        source = weights_source(spec, Path(args.cache_dir))
        family = FAMILIES[spec.family]
        pipe = family.load(source, None, dtype, device)
        steps, guidance = args.steps or 2, 0.0
        size = args.size or (64, 64)
        return Target(
            name,
            pipe,
            size,
            steps,
            guidance,
            dict(family.call_options),
            spec.id,
            spec.family,
            time.perf_counter() - began,
        )
    from pipelines.families import ARCHITECTURES
    from pipelines.families.full_size import build

    arch = ARCHITECTURES[name]
    pipe = build(arch, device, dtype)
    Clock(device).now()
    return Target(
        name,
        pipe,
        args.size or arch.size,
        args.steps or arch.steps,
        arch.guidance,
        dict(arch.call_options),
        arch.catalog_id,
        arch.family,
        time.perf_counter() - began,
    )


def measure(target: Target, args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    """Latency (with its split), throughput per batch size and peak memory of the pipeline as it is."""
    import torch

    from pipelines import encoding
    from pipelines.contract import pictures
    from pipelines.prompt_cache import prompt_cache

    cuda = clock.cuda
    if prompt_cache(target.pipe) is not None:  # each variant encodes its prompts afresh
        prompt_cache(target.pipe).clear()
    for index in range(args.warmup):
        target.generate(PROMPT.format(f"warm-up {index}"), [10_000 + index])
    runs, images = [], []
    for index in range(args.runs):
        with stages(target.pipe, clock) as spent:
            began = clock.now()
            produced = target.generate(PROMPT.format(index), [index])
            called = clock.now()
        encoded = [encoding.encode(image, "png") for image in produced]  # the server's PNG encoder
        done = time.perf_counter()
        for image in produced:  # the encoder before it, for encode_before / encode
            pictures.encode(image, "png")
        before = time.perf_counter() - done
        runs.append(
            {
                "total": done - began,
                "text_encode": spent["text_encode"],
                "vae_decode": spent["vae_decode"],
                "denoise": called - began - spent["text_encode"] - spent["vae_decode"],
                "encode": done - called,
                "encode_before": before,
                "png_bytes": len(encoded[0]),
            }
        )
        if index < args.compare:
            images.append(produced[0])
    # The prompt cache's case: the same prompt again (its first call above filled the cache).
    repeated = []
    for index in range(min(3, args.runs)):
        began = clock.now()
        target.generate(PROMPT.format(0), [20_000 + index])
        repeated.append(clock.now() - began)
    totals = sorted(run["total"] for run in runs)
    result: dict[str, Any] = {
        "latency_s": {"median": statistics.median(totals), "p90": _percentile(totals, 0.9), "runs": len(totals)},
        "split_s": {
            stage: statistics.median(run[stage] for run in runs)
            for stage in ("text_encode", "denoise", "vae_decode", "encode")
        },
        # What the PNG took with Pillow level 1 (the encoder before fpng and ISA-L), on the same images.
        "encode_before_s": statistics.median(run["encode_before"] for run in runs),
        "repeated_prompt_s": statistics.median(repeated) if repeated else None,
        "throughput": {},
    }
    for batch in args.batches:
        # Untimed first: a new batch size is a new shape, which a compiled model compiles once.
        target.generate(PROMPT.format(f"batch {batch} warm-up"), list(range(batch)))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        seconds = []
        for index in range(args.batch_runs):
            began = clock.now()
            produced = target.generate(PROMPT.format(f"batch {batch} {index}"), list(range(batch)))
            encoding.encode_all([(image, "png", None, None) for image in produced])
            seconds.append(time.perf_counter() - began)
        result["throughput"][str(batch)] = {
            "images_per_s": batch / statistics.median(seconds),
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        }
    result["_images"] = images
    return result


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def psnr(first: list[Any], second: list[Any]) -> float | None:
    """Mean PSNR (dB) between two lists of images of the same prompts and seeds; inf if identical."""
    import numpy as np

    if not first or not second:
        return None
    values = []
    for a, b in zip(first, second, strict=False):
        error = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
        values.append(math.inf if error == 0 else 10 * math.log10(255.0**2 / error))
    return statistics.mean(values)
