"""Fire bursts of concurrent generations at a server and tabulate what came back.

    python scripts/load.py --url http://127.0.0.1:8000 --key sk-local --bursts 16 64 256

Each burst sends N requests at once and waits for every answer. A request is "lost" when it
gets no HTTP answer at all (connection dropped, client timeout): the server must never lose
one, only answer 200 or a clear 429/503 with Retry-After. Traffic goes only to the given URL;
point it at a server on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import httpx


@dataclass
class Outcome:
    status: int | None  # None: lost
    seconds: float
    images: int
    retry_after: float | None = None  # what a refusal said to wait, seconds


def _told(response: httpx.Response) -> float | None:
    if "retry-after-ms" in response.headers:
        return int(response.headers["retry-after-ms"]) / 1000
    return float(response.headers["retry-after"]) if "retry-after" in response.headers else None


async def _one(client: httpx.AsyncClient, url: str, body: dict) -> Outcome:
    began = time.monotonic()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError:
        return Outcome(None, time.monotonic() - began, 0)
    images = len(response.json().get("data", [])) if response.status_code == 200 else 0
    return Outcome(response.status_code, time.monotonic() - began, images, _told(response))


async def burst(base_url: str, key: str, size: int, body: dict, timeout: float) -> tuple[list[Outcome], float]:
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers) as client:
        began = time.monotonic()
        outcomes = await asyncio.gather(*(_one(client, f"{base_url}/v1/images/generations", body) for _ in range(size)))
        return list(outcomes), time.monotonic() - began


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(size: int, outcomes: list[Outcome], wall: float) -> dict[str, str]:
    statuses = Counter(o.status for o in outcomes)
    ok = [o.seconds for o in outcomes if o.status == 200]
    told = [o.retry_after for o in outcomes if o.retry_after is not None]
    return {
        "sent": str(size),
        "200": str(statuses[200]),
        "429/503": str(statuses[429] + statuses[503]),
        "errors": str(sum(n for s, n in statuses.items() if s not in (200, 429, 503, None))),
        "lost": str(statuses[None]),
        "p50 s": f"{statistics.median(ok):.2f}" if ok else "-",
        "p95 s": f"{_percentile(ok, 0.95):.2f}" if ok else "-",
        "images/s": f"{sum(o.images for o in outcomes) / wall:.1f}",
        # Set against the 200s' latency: a refusal told to wait far longer than the accepted
        # requests took is a client kept away from an idle server.
        "Retry-After p50 s": f"{statistics.median(told):.2f}" if told else "-",
        "max s": f"{max(told):.2f}" if told else "-",
        "wall s": f"{wall:.1f}",
    }


def print_table(rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print(" | ".join(c.rjust(widths[c]) for c in columns))
    print("-+-".join("-" * widths[c] for c in columns))
    for r in rows:
        print(" | ".join(r[c].rjust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> list[dict[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default="sk-local")
    parser.add_argument("--bursts", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300, help="client timeout per request, seconds")
    args = parser.parse_args(argv)
    body = {
        "model": args.model,
        "prompt": "load test",
        "size": args.size,
        "response_format": "b64_json",
        "num_inference_steps": args.steps,
    }
    rows = []
    for size in args.bursts:
        outcomes, wall = asyncio.run(burst(args.url, args.key, size, body, args.timeout))
        rows.append(row(size, outcomes, wall))
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
