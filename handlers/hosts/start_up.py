"""What `imagegen serve` says and does as it starts, without keeping /health waiting.

The app is built without importing torch (seconds), so the port answers at once; torch, the
device and the default model come after, in a thread of their own: the start line says where
the models run, and a default tiny model is built and loaded before the first request needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pipelines.contract.errors import APIError

log = logging.getLogger("imagegen")

# How long the warm start waits, once the port is open, for the first request to be answered (a
# probe of /health, say): torch's import holds the GIL in long stretches, and a request that comes
# in meanwhile waited ~0.6 s more for its answer (port open to /health answered: 0.01-0.07 s
# after this wait, 0.5-0.7 s before it; 2 cores at load 3).
FIRST_ANSWER_GRACE_SECONDS = 1.0


def warm_start(
    app: Any,
    settings: Any,
    listening: Callable[[], bool] = lambda: True,
    answered: Callable[[], bool] = lambda: True,
) -> threading.Thread:
    """In the background, once `listening()` and then `answered()` (a first request) or a second
    gone by (importing torch holds the GIL for seconds, which would hold up the server's start and
    its first answer): the serving line (device, dtype, threads), then the default model loaded
    if it is a built-in tiny one (built first on a machine that never has)."""

    def run() -> None:
        while not listening():
            time.sleep(0.05)
        grace_ends = time.monotonic() + FIRST_ANSWER_GRACE_SECONDS
        while not answered() and time.monotonic() < grace_ends:
            time.sleep(0.02)
        models = app.state.services.engine.worker.models
        say_what_is_served(models, settings)
        default = next(iter(models.specs.values()))
        if default.source.startswith("tiny:") and not settings.preload:  # preload loads them all anyway
            began = time.monotonic()
            try:
                models.get(default.id)
            except APIError as exc:
                log.error("warming up %s failed: %s", default.id, exc.message)
                return
            log.info("%s ready for the first request (%.1f s after start)", default.id, time.monotonic() - began)

    thread = threading.Thread(target=run, name="imagegen-warm-start", daemon=True)
    thread.start()
    return thread


def say_what_is_served(models: Any, settings: Any) -> None:
    """What is served, where and how, and the settings that matter (never the keys)."""
    log.info(
        "serving %s on %s (%s, %d CPU threads); default %s",
        ", ".join(models.specs),
        models.device,
        str(models.torch_dtype()).removeprefix("torch."),
        models.threads(),
        settings.models[0],
        extra={
            "fields": {
                "keys": len(settings.api_keys),
                "storage_dir": str(settings.storage_dir),
                "storage_max_bytes": settings.storage_max_bytes,
                "max_queue": settings.max_queue,
                "max_batch_images": settings.max_batch_images,
                "preload": settings.preload,
                "response_format": settings.response_format,
                "cache_dir": str(settings.cache_dir),
            }
        },
    )
