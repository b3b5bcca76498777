"""What an anonymous, hostile client costs two servers, side by side (e.g. before and after a change).

    python scripts/bench_hostile.py --server before=http://127.0.0.1:8001,4242 \\
        --server after=http://127.0.0.1:8002,4243 --key sk-local --junk 5000 --slow 300

Each server is NAME=URL,PID (the PID to read its memory from /proc). For each it measures: /metrics
size and scrape time after JUNK made-up paths; /health latency while SLOW connections sit with
half-sent headers (and how many the server has closed 15 s later); /health latency and memory while
a big JSON body is sent; a 16-image edit of 4096x4096 PNGs to a one-image model (answer, time, memory).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

import httpx


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _flat_png(side: int) -> bytes:
    """A real side x side PNG of one colour: a few KB to send, side^2 x 4 bytes to decode."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _health_ms(url: str, probes: int = 10) -> tuple[float, float]:
    times = []
    for _ in range(probes):
        began = time.monotonic()
        try:
            httpx.get(f"{url}/health", timeout=30)
            times.append((time.monotonic() - began) * 1000)
        except httpx.HTTPError:
            times.append(30_000.0)
    return statistics.median(times), max(times)


async def _junk(url: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as client:
        for start in range(0, count, 64):
            await asyncio.gather(*(client.get(f"{url}/junk-{i}") for i in range(start, min(count, start + 64))))


def metrics_after_junk(url: str, key: str, count: int) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {key}"}
    before = len(httpx.get(f"{url}/metrics", headers=auth, timeout=60).content)
    asyncio.run(_junk(url, count))
    began = time.monotonic()
    after = len(httpx.get(f"{url}/metrics", headers=auth, timeout=600).content)
    return {
        "/metrics KB before": f"{before / 1024:.1f}",
        f"/metrics KB after {count} junk": f"{after / 1024:.1f}",
        "scrape s": f"{time.monotonic() - began:.2f}",
    }


def slow_clients(url: str, count: int) -> dict[str, str]:
    parts = urlsplit(url)
    socks = []
    for _ in range(count):
        try:
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            sock.sendall(b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            socks.append(sock)
        except OSError:
            break
    p50, worst = _health_ms(url)
    time.sleep(15)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            sock.recv(65536)  # an answer, or the end of the stream: the server let go
            closed += 1
        except BlockingIOError:  # nothing yet: still held open
            pass
        except OSError:
            closed += 1
        sock.close()
    return {
        f"/health p50/max ms, {len(socks)} stalled": f"{p50:.0f}/{worst:.0f}",
        "stalled closed by server after 15 s": str(closed),
    }


def big_json(url: str, key: str, pid: int, megabytes: int) -> dict[str, str]:
    item = b'{"a":1},'
    body = b'{"prompt":"x","junk":[' + item * (megabytes * 2**20 // len(item)) + b'{"a":1}]}'
    rss, answer = _rss_mb(pid), []
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    def send() -> None:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        try:
            answer.append(httpx.post(f"{url}/v1/images/generations", content=chunks, headers=headers, timeout=120))
        except httpx.HTTPError as exc:
            answer.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    p50, worst = _health_ms(url, probes=20)
    sender.join()
    status = answer[0].status_code if isinstance(answer[0], httpx.Response) else type(answer[0]).__name__
    return {
        f"{megabytes} MB JSON: answer": str(status),
        "/health p50/max ms meanwhile": f"{p50:.0f}/{worst:.0f}",
        "RSS MB +": f"{_rss_mb(pid) - rss:.0f}",
    }


def sixteen_images(url: str, key: str, pid: int) -> dict[str, str]:
    image = _flat_png(4096)
    files = [("image[]", (f"{i}.png", image, "image/png")) for i in range(16)]
    rss, began = _rss_mb(pid), time.monotonic()
    response = httpx.post(
        f"{url}/v1/images/edits",
        data={"prompt": "x", "model": "tiny-sd"},
        files=files,
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )
    code = response.json().get("error", {}).get("code") if response.status_code != 200 else "-"
    return {
        "16 x 4096^2 edit: answer": f"{response.status_code} {code}",
        "edit s": f"{time.monotonic() - began:.2f}",
        "edit RSS MB +": f"{_rss_mb(pid) - rss:.0f}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", required=True, help="NAME=URL,PID")
    parser.add_argument("--key", default="sk-local")
    parser.add_argument("--junk", type=int, default=5000)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--json-mb", type=int, default=48)
    args = parser.parse_args(argv)
    columns: dict[str, dict[str, str]] = {}
    for spec in args.server:
        name, _, rest = spec.partition("=")
        url, _, pid = rest.partition(",")
        row = {"RSS MB at start": f"{_rss_mb(int(pid)):.0f}"}
        row |= metrics_after_junk(url, args.key, args.junk)
        row |= slow_clients(url, args.slow)
        row |= big_json(url, args.key, int(pid), args.json_mb)
        row |= sixteen_images(url, args.key, int(pid))
        row["RSS MB at end"] = f"{_rss_mb(int(pid)):.0f}"
        columns[name] = row
    names = list(columns)
    width = max(len(key) for key in columns[names[0]])
    print(f"{'':{width}}  " + "  ".join(f"{name:>14}" for name in names))
    for key in columns[names[0]]:
        print(f"{key:{width}}  " + "  ".join(f"{columns[name].get(key, '-'):>14}" for name in names))


if __name__ == "__main__":
    main()
