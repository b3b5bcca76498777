"""What a job costs over the synchronous call for the same work: side by side, in one run.

    python scripts/bench_jobs.py --rounds 10 --size 64 --steps 2

A real `imagegen serve` on 127.0.0.1 (tiny-sd, preloaded). Each round makes the same image both ways, in turn: a
synchronous POST, and a POST with `Prefer: respond-async` polled every `--poll-ms` until the job
is completed (its result fetched). Prints the medians, their ratio, and the 202's own latency
(what a caller waits before it has a job id). The poll interval bounds what a caller adds; the
server adds its record writes and the runner's hand-over to the engine.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pixels(body: dict) -> list[bytes]:
    return [Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))).tobytes() for item in body["data"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--cache-dir", default=os.environ.get("IMAGEGEN_CACHE_DIR"))
    args = parser.parse_args(argv)
    body = {
        "model": "tiny-sd",
        "prompt": "a lighthouse",
        "size": f"{args.size}x{args.size}",
        "num_inference_steps": args.steps,
        "response_format": "b64_json",
        "seed": 1,
    }
    port, work = _free_port(), Path(tempfile.mkdtemp(prefix="imagegen-bench-jobs-"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_STORAGE_DIR": str(work / "images"),
        "IMAGEGEN_CACHE_DIR": args.cache_dir or str(work / "cache"),
    }
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "handlers.hosts.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=300, trust_env=False) as api:
            for _ in range(600):
                try:
                    if api.get("/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            api.post("/v1/images/generations", json=body)  # the load and first run are nobody's overhead
            sync, job, accepted = [], [], []
            for _ in range(args.rounds):
                began = time.perf_counter()
                answer = api.post("/v1/images/generations", json=body)
                sync.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.text

                began = time.perf_counter()
                submitted = api.post("/v1/images/generations", json=body, headers={"Prefer": "respond-async"})
                accepted.append(time.perf_counter() - began)
                assert submitted.status_code == 202, submitted.text
                while (found := api.get(f"/v1/images/jobs/{submitted.json()['id']}").json())["status"] != "completed":
                    assert found["status"] in ("queued", "in_progress"), found
                    time.sleep(args.poll_ms / 1000)
                job.append(time.perf_counter() - began)
                # The same images, so the same work (pixels: each file's content credentials differ).
                assert _pixels(found["result"]) == _pixels(answer.json())
    finally:
        server.terminate()
        server.wait(timeout=60)
    s, j, a = (statistics.median(each) * 1000 for each in (sync, job, accepted))
    print(
        f"{args.rounds} rounds, tiny-sd {args.size}x{args.size}, {args.steps} steps, polling every {args.poll_ms:g} ms"
    )
    print(f"synchronous call  median {s:8.1f} ms")
    print(f"job, submit->done median {j:8.1f} ms   ratio job/sync {j / s:.2f}   overhead {j - s:+.1f} ms")
    print(f"the 202 alone     median {a:8.1f} ms   ({a / s:.2f} of the synchronous call)")


if __name__ == "__main__":
    main()
