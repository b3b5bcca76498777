"""Encoding speed: the server's encoders against the previous ones, side by side in one run.

    python scripts/bench_encode.py [--size 1024] [--repeat 5] [--batch 4]

On a smooth, photo-like image (gradients plus a little grain) such as a diffusion model makes,
prints milliseconds and bytes per image: PNG as the server writes it (`pipelines/encoding.py`: the
Up filter, ISA-L's deflate, the `parameters` chunk) against Pillow at level 1 (what the server used
before fpng) and Pillow's default;
JPEG and WebP on our fast settings against Pillow's defaults; and a batch of `--batch` PNGs and
JPEGs encoded side by side (`encode_all`) against one after another with Pillow level 1. png-rgba
is the same picture with alpha, png-smooth has no grain.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from PIL import Image, ImageFilter

from pipelines.contract import pictures
from pipelines.encoding import encode, encode_all

PARAMETERS = "a lighthouse at dusk\nSteps: 4, CFG scale: 0.0, Seed: 7, Size: 1024x1024, Model: flux2-klein"


def photo_like(size: int, seed: int = 0, *, grain: bool = True) -> Image.Image:
    """Gradients, and in the blue channel blurred noise (film grain) unless `grain` is False."""
    gradient = Image.linear_gradient("L").resize((size, size)).rotate(seed * 7)
    radial = Image.radial_gradient("L").resize((size, size))
    blue = Image.effect_noise((size, size), 12).filter(ImageFilter.GaussianBlur(1)) if grain else radial.rotate(90)
    return Image.merge("RGB", (gradient, radial, blue))


def _pillow_default(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format)
    return out.getvalue()


def _interleaved(encoders: list[Callable[[], list[bytes]]], repeat: int) -> list[tuple[float, int]]:
    """Each encoder's median milliseconds and the bytes it made in all, the encoders taking turns
    in every round so a busy machine slows them alike."""
    times: list[list[float]] = [[] for _ in encoders]
    sizes = [0] * len(encoders)
    for encoder in encoders:  # untimed: imports, first allocations
        encoder()
    for _ in range(repeat):
        for index, encoder in enumerate(encoders):
            began = time.perf_counter()
            sizes[index] = sum(len(data) for data in encoder())
            times[index].append(time.perf_counter() - began)
    return [(statistics.median(each) * 1000, size) for each, size in zip(times, sizes, strict=True)]


def _rows(format: str, named: dict[str, Callable[[], list[bytes]]], repeat: int) -> None:
    """One row per encoder, its time and bytes as a ratio to the first's."""
    measured = _interleaved(list(named.values()), repeat)
    base_ms, base_size = measured[0]
    for setting, (ms, size) in zip(named, measured, strict=True):
        print(f"{format:<8} {setting:<30} {ms:8.1f} {size / 1024:8.0f} {ms / base_ms:10.2f}x {size / base_size:10.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"{args.size}x{args.size}, median of {args.repeat} interleaved rounds; ratios to the first row of each")
    print(f"{'format':<8} {'setting':<30} {'ms':>8} {'KiB':>8} {'time':>11} {'bytes':>11}")
    smooth = photo_like(args.size, grain=False)
    for label, picture in (
        ("png", photo_like(args.size)),
        ("png-rgba", photo_like(args.size).convert("RGBA")),
        ("png-smooth", smooth),
    ):
        encoders = {
            "Pillow level 1 (before)": lambda p=picture: [pictures.encode(p, "png", parameters=PARAMETERS)],
            "Up + ISA-L + parameters (now)": lambda p=picture: [encode(p, "png", None, PARAMETERS)],
            "Pillow default (level 6)": lambda p=picture: [_pillow_default(p, "PNG")],
        }
        _rows(label, encoders, args.repeat)
    image = photo_like(args.size)
    for format, pillow_name in (("jpeg", "JPEG"), ("webp", "WEBP")):
        encoders = {
            "Pillow default": lambda name=pillow_name: [_pillow_default(image, name)],
            "imagegen": lambda kind=format: [encode(image, kind)],
        }
        _rows(format, encoders, args.repeat)
    batch = [photo_like(args.size, seed) for seed in range(args.batch)]
    for format in ("png", "jpeg"):
        encoders = {
            "one by one, Pillow (before)": lambda f=format: [
                pictures.encode(each, f, None, PARAMETERS) for each in batch
            ],
            "side by side, encode_all (now)": lambda f=format: encode_all(
                [(each, f, None, PARAMETERS) for each in batch]
            ),
        }
        _rows(f"{args.batch}x{format}", encoders, args.repeat)


if __name__ == "__main__":
    main()
