"""Temp images on a Modal Volume: a blocking commit per stored image vs the background committer.

    python scripts/bench_volume_commits.py --responses 64 --images 2 --commit-ms 150

Runs `--responses` URL responses at once, each storing `--images` images the way the route does
(each `put` in anyio's request thread pool, as FastAPI runs sync code), against a Volume whose
`commit()` takes `--commit-ms` (a stand-in at the `VolumeFiles` boundary: no Modal account is
needed, the latency is what is being varied). Both designs return a response only once every
image it names is committed.

- before: each `put` commits before it returns, holding its pool thread meanwhile (a commit
  covers the writes made before it began, one commit at a time: the previous design);
- after: `put` only writes; the response awaits `publish()`, which the background committer
  releases with the first commit that began after its writes, holding no thread.

Prints each design's wall time, response latency (mean, p95), commits made, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handlers.hosts.modal.volume import VolumeImageStore  # noqa: E402


class SlowVolume:
    """The Volume API with a commit that takes `seconds` (and never two at once, as one
    container's commits are serialised by the Volume)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.commits = 0
        self._lock = threading.Lock()

    def commit(self) -> None:
        with self._lock:
            time.sleep(self.seconds)
            self.commits += 1

    def read(self, path: str) -> bytes | None:
        return None


class BlockingCommitStore(VolumeImageStore):
    """The previous design, kept here for the comparison: `put` writes, then blocks its thread
    until a commit that began after the write has finished (group commit, one at a time)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._committed = 0
        self._committing = threading.Lock()

    def put(self, data: bytes, format: str) -> str:
        image_id = super().put(data, format)
        with self._counter:
            mine = self._written
        with self._committing:
            if self._committed < mine:
                with self._counter:
                    covered = self._written
                self.volume.commit()
                self._committed = covered
        return image_id


async def _respond(store: VolumeImageStore, images: int, publish: bool) -> float:
    began = time.perf_counter()
    for index in range(images):
        await run_in_threadpool(store.put, b"\x89PNG" + bytes(2048) + index.to_bytes(2, "big"), "png")
    if publish:
        await store.publish()
    return time.perf_counter() - began


def run(design: str, responses: int, images: int, commit_seconds: float) -> dict[str, float]:
    volume = SlowVolume(commit_seconds)
    with tempfile.TemporaryDirectory() as root:
        if design == "before":
            store: VolumeImageStore = BlockingCommitStore(Path(root), 3600, volume)
        else:
            store = VolumeImageStore(Path(root), 3600, volume)

        async def burst() -> tuple[float, list[float]]:
            began = time.perf_counter()
            latencies = await asyncio.gather(*(_respond(store, images, design == "after") for _ in range(responses)))
            return time.perf_counter() - began, list(latencies)

        wall, latencies = asyncio.run(burst())
    latencies.sort()
    return {
        "wall": wall,
        "mean": statistics.fmean(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "commits": volume.commits,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=64, help="URL responses at once")
    parser.add_argument("--images", type=int, default=2, help="images per response (n)")
    parser.add_argument("--commit-ms", type=float, default=150.0, help="what one Volume commit takes")
    args = parser.parse_args(argv)
    print(f"{args.responses} responses at once, {args.images} images each, a commit takes {args.commit_ms:g} ms")
    results = {
        design: run(design, args.responses, args.images, args.commit_ms / 1000) for design in ("before", "after")
    }
    print(f"{'design':<8} {'wall s':>8} {'mean s':>8} {'p95 s':>8} {'commits':>8}")
    for design, numbers in results.items():
        print(
            f"{design:<8} {numbers['wall']:8.2f} {numbers['mean']:8.2f} {numbers['p95']:8.2f} {numbers['commits']:8d}"
        )
    before, after = results["before"], results["after"]
    print(
        f"before/after: wall {before['wall'] / after['wall']:.2f}x, "
        f"mean latency {before['mean'] / after['mean']:.2f}x, "
        f"p95 {before['p95'] / after['p95']:.2f}x, commits {before['commits'] / max(1, after['commits']):.2f}x"
    )


if __name__ == "__main__":
    main()
