"""An MCP `generate_image` call against the HTTP API for the same request, side by side in one run.

    python scripts/bench_mcp.py --sizes 64 256 --steps 1 --rounds 10
    python scripts/bench_mcp.py --url http://127.0.0.1:8000 --key sk-...   # a server already running

Starts `imagegen serve` on a built-in tiny model with a key (or uses `--url`), then, round by
round, alternates the same generation (prompt, size, steps, seed) as `POST /v1/images/generations`
with `response_format: b64_json` and as an MCP `tools/call` of `generate_image` through the
official client, over one session (stateless: one POST a call, its answer an SSE stream). The MCP
answer also stores the image behind a temp URL, as its text block gives one. Prints each way's
median milliseconds and the ratio MCP / HTTP (lower is better; 1.0 is no overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-mcp"


def _start(model: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = tempfile.mkdtemp(prefix="bench-mcp-")
    env = {**os.environ, "IMAGEGEN_API_KEYS": KEY, "IMAGEGEN_STORAGE_DIR": storage}
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.hosts.cli", "serve", "--port", str(port), "--model", model],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not answer /health in 120 s")


async def _compare(url: str, key: str, model: str, sizes: list[int], steps: int, rounds: int) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    auth = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=auth, timeout=300) as http,
        create_mcp_http_client(headers=auth) as mcp_http,
        streamable_http_client(f"{url}/mcp", http_client=mcp_http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()

        def request(size: int, seed: int) -> dict:
            return {"prompt": "a lighthouse", "model": model, "size": f"{size}x{size}", "seed": seed}

        async def over_http(size: int, seed: int, answer: str = "b64_json") -> None:
            body = {**request(size, seed), "num_inference_steps": steps, "response_format": answer}
            response = await http.post("/v1/images/generations", json=body)
            response.raise_for_status()
            assert response.json()["data"][0][answer]

        async def over_http_url(size: int, seed: int) -> None:
            await over_http(size, seed, "url")

        async def over_mcp(size: int, seed: int) -> None:
            result = await session.call_tool("generate_image", {**request(size, seed), "num_inference_steps": steps})
            assert not result.is_error and result.content[0].type == "image", result

        async def timed(way, size: int, seed: int) -> float:
            began = time.perf_counter()
            await way(size, seed)
            return time.perf_counter() - began

        ways = [("b64", over_http), ("url", over_http_url), ("mcp", over_mcp)]
        print(f"{model}, {steps} step(s), {rounds} rounds, median ms")
        print(f"{'size':>9} {'HTTP b64':>9} {'HTTP url':>9} {'MCP':>9} {'MCP/HTTP b64':>13} {'MCP/HTTP url':>13}")
        for size in sizes:
            for _, way in ways:  # the model's load and first run are no one's overhead
                await way(size, 0)
            times: dict[str, list[float]] = {name: [] for name, _ in ways}
            for round_ in range(rounds):
                # Rotate who goes first, so a noisy machine weighs on each alike.
                for name, way in ways[round_ % 3 :] + ways[: round_ % 3]:
                    times[name].append(await timed(way, size, round_ + 1))
            b64, url_, mcp = (statistics.median(times[name]) * 1000 for name, _ in ways)
            print(f"{size}x{size:<5} {b64:9.1f} {url_:9.1f} {mcp:9.1f} {mcp / b64:13.2f} {mcp / url_:13.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--url", help="a running server (default: start one on --model)")
    parser.add_argument("--key", default=KEY, help="its API key (with --url)")
    args = parser.parse_args(argv)
    process, url = (None, args.url.rstrip("/")) if args.url else _start(args.model)
    try:
        asyncio.run(_compare(url, args.key, args.model, args.sizes, args.steps, args.rounds))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
