"""How long a user waits for the commands, and for a first image on a fresh cache, side by side.

    python scripts/bench_start.py --before /path/to/an/older/checkout [--rounds 3]

For each source tree (this one, and `--before` if given, taking turns round by round): the
seconds until `imagegen --help`, `models` and `pull sd-turbo` (offline, an empty hub cache) print
their first line and until they exit; for `imagegen serve` on a fresh cache folder, the seconds
until /health answers, and until a first 64x64 image comes back when it is asked for right then
(the request's own latency beside it); then, that server up, `imagegen jobs list` against it.
Prints medians and now / before ratios (lower is better).
An older checkout: `git archive <commit> | tar -x -C /tmp/before`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent.parent
COMMANDS = {"--help": ["--help"], "models": ["models"], "pull": ["pull", "sd-turbo"]}


def _env(tree: Path, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(tree),
        "HF_HOME": str(scratch / "hf"),
        "HF_HUB_OFFLINE": "1",
        "IMAGEGEN_CACHE_DIR": str(scratch / "cache"),
        "IMAGEGEN_STORAGE_DIR": str(scratch / "images"),
    }


def command(tree: Path, args: list[str]) -> tuple[float, float]:
    """(seconds to the first line printed, seconds to exit)."""
    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.hosts.cli", *args],
            cwd=tree,
            env=_env(tree, Path(scratch)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        process.stdout.readline()
        first = time.perf_counter() - began
        process.communicate()
        return first, time.perf_counter() - began


def serve(tree: Path) -> dict[str, float]:
    """Seconds to /health, to a first image asked for at once, that request's latency, and
    `imagegen jobs list`'s against that server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.hosts.cli", "serve", "--port", str(port), "--model", "tiny-sd"],
            cwd=tree,
            env=_env(tree, Path(scratch)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.02)
            health = time.perf_counter() - began
            body = {"prompt": "a lighthouse", "size": "64x64", "num_inference_steps": 2, "response_format": "b64_json"}
            asked = time.perf_counter()
            response = httpx.post(f"{url}/v1/images/generations", json=body, timeout=300)
            response.raise_for_status()
            done = time.perf_counter()
            jobs_first, jobs_exit = command(tree, ["jobs", "--url", url, "list"])
            return {
                "serve: /health answers": health,
                "serve: start to first image": done - began,
                "serve: first request's latency": done - asked,
                "jobs list: first line": jobs_first,
                "jobs list: exit": jobs_exit,
            }
        finally:
            process.terminate()
            process.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="an older source tree to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    trees = {"now": HERE, **({"before": args.before.resolve()} if args.before else {})}
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    loads_at_start = os.getloadavg()
    for _ in range(args.rounds):
        for name, tree in trees.items():
            for label, command_args in COMMANDS.items():
                first, total = command(tree, command_args)
                figures[name].setdefault(f"{label}: first line", []).append(first)
                figures[name].setdefault(f"{label}: exit", []).append(total)
            for key, seconds in serve(tree).items():
                figures[name].setdefault(key, []).append(seconds)
    loads = f"{loads_at_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at the end"
    print(f"median of {args.rounds} rounds, seconds (load average {loads})")
    print(f"{'':<34} {'now':>8}" + (f" {'before':>8} {'now/before':>11}" if args.before else ""))
    for key, values in figures["now"].items():
        now = statistics.median(values)
        row = f"{key:<34} {now:8.2f}"
        if args.before:
            before = statistics.median(figures["before"][key])
            row += f" {before:8.2f} {now / before:10.2f}x"
        print(row)


if __name__ == "__main__":
    main()
