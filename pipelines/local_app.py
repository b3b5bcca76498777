"""Local mode: the app around an in-process Worker and a temp-image folder."""

from __future__ import annotations

from fastapi import FastAPI

from handlers.app import create_app
from handlers.settings import Settings
from handlers.store import LocalImageStore
from pipelines.catalog import ServedModels
from pipelines.local_engine import LocalEngine, QueueLimits
from pipelines.worker import Worker


def create_local_app(settings: Settings | None = None) -> FastAPI:
    """The app `imagegen serve` runs (also usable as `uvicorn pipelines.local_app:create_local_app --factory`)."""
    settings = settings or Settings()
    served = ServedModels.from_names(settings.model_names, settings.alias_map)
    worker = Worker(served.specs, cache_dir=settings.cache_dir, device=settings.device,
                    max_loaded=settings.max_loaded_models)
    store = LocalImageStore(settings.storage_dir, settings.image_ttl_seconds)
    limits = QueueLimits(
        max_queue=settings.max_queue,
        queue_timeout_seconds=settings.queue_timeout_seconds,
        max_batch_images=settings.max_batch_images,
        batch_wait_ms=settings.batch_wait_ms,
    )
    return create_app(settings, LocalEngine(worker, preload=settings.preload, limits=limits), store, served)
