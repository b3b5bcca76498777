"""Local mode: the app around an in-process Worker and a temp-image folder."""

from __future__ import annotations

from fastapi import FastAPI

from handlers.app import create_app
from handlers.hosts.local_settings import LocalSettings
from handlers.stores.folder import LocalImageStore
from pipelines.contract.matting import MATTING_MODELS
from pipelines.contract.models_file import read_models_file
from pipelines.contract.served import ServedModels
from pipelines.local_engine import LocalEngine
from pipelines.matting.matte import Matting
from pipelines.model_cache import ModelCache
from pipelines.optimize import Optimizations
from pipelines.settings import EngineSettings
from pipelines.worker import Worker

__all__ = ["LocalSettings", "create_local_app", "local_worker", "served_models"]


def served_models(settings: LocalSettings) -> ServedModels:
    extra = read_models_file(settings.models_file) if settings.models_file else ()
    return ServedModels.from_names(settings.models, settings.model_aliases, settings.lora_dir, extra)


def local_worker(served: ServedModels, settings: EngineSettings, *, max_loaded: int | None = None) -> Worker:
    cache = ModelCache(
        served.specs,
        cache_dir=settings.cache_dir,
        device=settings.device,
        max_loaded=max_loaded or settings.max_loaded_models,
        optimizations=Optimizations.from_settings(settings),
        threads=settings.threads,
    )
    matting = Matting(MATTING_MODELS[settings.matting_model], settings.cache_dir)
    return Worker(cache, png_parameters=settings.png_parameters, matting=matting)


def create_local_app(settings: LocalSettings | None = None) -> FastAPI:
    """The app `imagegen serve` runs (also usable as `uvicorn handlers.hosts.local:create_local_app --factory`)."""
    settings = settings or LocalSettings()
    served = served_models(settings)
    store = LocalImageStore(settings.storage_dir, settings.image_ttl_seconds, max_bytes=settings.storage_max_bytes)
    return create_app(settings, LocalEngine(local_worker(served, settings), settings), store, served)
