"""Encoding speed: our Pillow settings against Pillow's defaults, side by side in one run.

    python scripts/bench_encode.py [--size 1024] [--repeat 5]

Prints milliseconds and bytes per image for each setting and the ratio to the default, on a
smooth, photo-like image (gradients plus a little grain) such as a diffusion model makes.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from PIL import Image, ImageFilter

from pipelines.contract.pictures import encode


def photo_like(size: int) -> Image.Image:
    gradient = Image.linear_gradient("L").resize((size, size))
    radial = Image.radial_gradient("L").resize((size, size))
    grain = Image.effect_noise((size, size), 12).filter(ImageFilter.GaussianBlur(1))
    return Image.merge("RGB", (gradient, radial, grain))


def _pillow_default(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format)
    return out.getvalue()


def _time(encoder, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        size = len(encoder())
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    image = photo_like(args.size)
    print(f"{args.size}x{args.size}, median of {args.repeat}")
    print(f"{'format':<6} {'setting':<22} {'ms':>8} {'KiB':>8} {'speed vs default':>17} {'bytes vs default':>17}")
    for format, pillow_name in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")):
        default_ms, default_bytes = _time(lambda name=pillow_name: _pillow_default(image, name), args.repeat)
        ours_ms, ours_bytes = _time(lambda kind=format: encode(image, kind), args.repeat)
        default = f"{default_ms:8.1f} {default_bytes / 1024:8.0f} {'1.00x':>17} {'1.00x':>17}"
        print(f"{format:<6} {'Pillow default':<22} {default}")
        print(
            f"{format:<6} {'imagegen':<22} {ours_ms:8.1f} {ours_bytes / 1024:8.0f} "
            f"{default_ms / ours_ms:16.2f}x {ours_bytes / default_bytes:16.2f}x"
        )


if __name__ == "__main__":
    main()
