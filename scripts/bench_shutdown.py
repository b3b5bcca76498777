"""How long `imagegen serve` takes to stop on SIGTERM with jobs waiting, and what the waiting get.

    python scripts/bench_shutdown.py --queued 12

Starts a server on this machine (tiny-sd, preloaded), runs one job, queues `--queued` more of
the same, sends SIGTERM while the first runs, and prints how long the process took to exit and
what every request got back. Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

JOB = {"model": "tiny-sd", "prompt": "a long one", "size": "1024x1024", "num_inference_steps": 20}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20, help="denoising steps of each 1024x1024 job")
    parser.add_argument("--cache-dir", default=os.environ.get("IMAGEGEN_CACHE_DIR"))
    args = parser.parse_args(argv)

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="imagegen-shutdown-"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "IMAGEGEN_MODELS": "tiny-sd",
        "IMAGEGEN_PRELOAD": "true",
        "IMAGEGEN_STORAGE_DIR": str(work / "images"),
        "IMAGEGEN_CACHE_DIR": args.cache_dir or str(work / "cache"),
    }
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "handlers.hosts.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1/images/generations"
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    job = {**JOB, "num_inference_steps": args.steps}
    began = time.monotonic()
    httpx.post(url, json=job, timeout=120)
    one_job = time.monotonic() - began

    answers: list[str] = []

    def post() -> None:
        try:
            response = httpx.post(url, json=job, timeout=300)
            answers.append(f"{response.status_code} {response.json().get('error', {}).get('code', '')}".strip())
        except httpx.HTTPError as exc:
            answers.append(f"lost ({type(exc).__name__})")

    threads = [threading.Thread(target=post) for _ in range(1 + args.queued)]
    threads[0].start()
    time.sleep(0.5)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.5)
    signalled = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=600)
    exited = time.monotonic() - signalled
    for thread in threads:
        thread.join()
    print(f"one job alone: {one_job:.1f} s; {args.queued} queued behind one running; SIGTERM")
    print(f"exited {exited:.1f} s after SIGTERM")
    for answer, count in sorted(Counter(answers).items()):
        print(f"  {count:>3} x {answer}")


if __name__ == "__main__":
    main()
