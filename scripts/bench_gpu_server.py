"""scripts/bench_gpu.py's --server mode: the benchmark's pipeline behind the real server (LocalEngine,
the FastAPI app under uvicorn on 127.0.0.1, b64_json), and dynamic batching on against off."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scripts.bench_gpu_measure import PROMPT, Clock, Target


def bench_server(target: Target, args: argparse.Namespace, clock: Clock) -> dict[str, Any] | None:
    """The same pipeline behind the real server: LocalEngine, the app under uvicorn, b64_json."""
    from pipelines.contract.catalog import CATALOG

    if target.spec_id not in CATALOG:
        print(f"  server: {target.name} is not in this catalog; skipped")
        return None
    from pipelines.encoding import encode

    spec = CATALOG[target.spec_id]
    direct = []
    for index in range(args.runs):
        began = clock.now()
        image = target.generate(PROMPT.format(f"direct {index}"), [index])[0]
        encode(image, "png")
        direct.append(time.perf_counter() - began)
    result: dict[str, Any] = {"direct_s": statistics.median(direct), "concurrency": {}}
    for batching, max_images in (("on", 8), ("off", 1)):
        with _server(target, spec, max_images, args) as (client, url):
            body = {
                "model": spec.id,
                "prompt": PROMPT.format("http"),
                "n": 1,
                "response_format": "b64_json",
                "size": f"{target.size[0]}x{target.size[1]}",
                "num_inference_steps": target.steps,
                "guidance_scale": target.guidance,
            }
            if batching == "on":
                for index in range(args.warmup):
                    client.post(
                        f"{url}/v1/images/generations", json={**body, "seed": 90_000 + index}
                    ).raise_for_status()
                seconds = []
                for index in range(args.runs):
                    began = time.perf_counter()
                    client.post(f"{url}/v1/images/generations", json={**body, "seed": index}).raise_for_status()
                    seconds.append(time.perf_counter() - began)
                result["http_s"] = statistics.median(seconds)
            for concurrent in args.concurrency:
                rate = _concurrent_rate(url, body, concurrent, args.batch_runs)
                result["concurrency"].setdefault(str(concurrent), {})[batching] = rate
    print(
        f"  server (LocalEngine + uvicorn + b64_json): {result['http_s'] * 1000:.1f} ms a request against "
        f"{result['direct_s'] * 1000:.1f} ms direct ({result['http_s'] / result['direct_s']:.2f}x; the API adds "
        f"{(result['http_s'] - result['direct_s']) * 1000:.1f} ms)"
    )
    for concurrent, rates in result["concurrency"].items():
        print(
            f"    {concurrent:>2} concurrent: batching on {rates['on']:.2f} img/s, off {rates['off']:.2f} img/s "
            f"({rates['on'] / rates['off']:.2f}x)"
        )
    return result


def _concurrent_rate(url: str, body: dict[str, Any], concurrent: int, rounds: int) -> float:
    """Images/s with `concurrent` requests in flight at once, median of `rounds`."""
    import asyncio

    import httpx

    async def burst() -> float:
        async with httpx.AsyncClient(timeout=600) as client:
            began = time.perf_counter()
            responses = await asyncio.gather(
                *(
                    client.post(f"{url}/v1/images/generations", json={**body, "seed": 50_000 + index})
                    for index in range(concurrent)
                )
            )
            for response in responses:
                response.raise_for_status()
            return concurrent / (time.perf_counter() - began)

    asyncio.run(burst())  # untimed: a batch of a new size is a new shape, compiled once
    return statistics.median(asyncio.run(burst()) for _ in range(rounds))


@contextmanager
def _server(target: Target, spec: Any, max_batch_images: int, args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    """The real app on 127.0.0.1 around a Worker whose cache holds the already built pipeline."""
    import socket
    import threading

    import httpx
    import uvicorn

    from handlers.app import create_app
    from handlers.hosts.local import LocalSettings
    from handlers.stores.folder import LocalImageStore
    from pipelines.contract.served import ServedModels
    from pipelines.families import FAMILIES
    from pipelines.local_engine import LocalEngine
    from pipelines.model_cache import LoadedModel, ModelCache
    from pipelines.worker import Worker

    class Built(ModelCache):
        """The model cache with the benchmark's pipeline in it: loading is not what is measured."""

        def _load(self, _spec: Any) -> LoadedModel:
            return LoadedModel(model_id=spec.id, family=FAMILIES[spec.family], pipe=target.pipe)

    storage = tempfile.mkdtemp(prefix="imagegen-bench-images-")
    settings = LocalSettings(
        models=[spec.id],
        device=args.device,
        storage_dir=storage,
        cache_dir=args.cache_dir,
        max_batch_images=max_batch_images,
        batch_wait_ms=args.batch_wait_ms,
    )
    cache = Built([spec], cache_dir=Path(args.cache_dir), device=args.device, max_loaded=1)
    engine = LocalEngine(Worker(cache, png_parameters=False), settings)
    store = LocalImageStore(settings.storage_dir, settings.image_ttl_seconds, max_bytes=settings.storage_max_bytes)
    app = create_app(settings, engine, store, ServedModels.from_names([spec.id]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with httpx.Client(timeout=600) as client:
            yield client, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
