"""What content credentials cost per image: signing (c2pa-python, the server's manifest) beside the
encode of the same image, measured side by side in one run, per format and size.

    python scripts/bench_credentials.py --sizes 512 1024 --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from handlers.provenance.credentials import ContentCredentials
from handlers.provenance.identity import local_identity
from pipelines.contract import pictures
from pipelines.contract.job import Job


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    credentials = ContentCredentials(local_identity(Path(tempfile.mkdtemp()) / "c2pa"))
    print(f"{'format':6} {'size':>6} {'encode ms':>10} {'sign ms':>8} {'sign/encode':>12} {'bytes added':>12}")
    for side in args.sizes:
        # Photo-like: every pixel different, as a generated image's are (a flat one would flatter the encoder).
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        for output_format in ("png", "jpeg", "webp"):
            job = Job(
                task="generate",
                model="tiny-sd",
                prompt="x",
                n=1,
                width=side,
                height=side,
                output_width=side,
                output_height=side,
                steps=1,
                guidance=0.0,
                seeds=(0,),
                output_format=output_format,  # type: ignore[arg-type]
            )
            data = pictures.encode(image, output_format)
            credentials.sign(data, job)  # warm
            encode = _median_ms(lambda: pictures.encode(image, output_format), args.runs)  # noqa: B023
            sign = _median_ms(lambda: credentials.sign(data, job), args.runs)  # noqa: B023
            added = len(credentials.sign(data, job)) - len(data)
            print(f"{output_format:6} {side:>6} {encode:>10.1f} {sign:>8.1f} {sign / encode:>12.2f} {added:>12}")


if __name__ == "__main__":
    main()
