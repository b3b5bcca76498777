"""The app factory: the same FastAPI app locally and on Modal, around whichever Engine and store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from handlers.auth import BearerAuth
from handlers.deps import Services
from handlers.http_errors import install_error_handlers
from handlers.json_body import JsonByDefault
from handlers.limits import MB, BodyLimit
from handlers.metrics import metrics_registry
from handlers.routes import health, images, metrics, models, playground, temp_images
from handlers.settings import ServerSettings
from handlers.stores.core import ImageStore
from pipelines.contract.engine import Engine
from pipelines.contract.served import ServedModels

log = logging.getLogger("imagegen")


async def _sweep_forever(store: ImageStore, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            removed = await run_in_threadpool(store.sweep)
            if removed:
                log.info("swept %d expired temp images", removed)
        except Exception:  # a failed sweep must not end the sweeping
            log.exception("temp image sweep failed")


def create_app(settings: ServerSettings, engine: Engine, store: ImageStore, served: ServedModels) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.api_keys:
            log.warning(
                "IMAGEGEN_API_KEYS is not set: the API is OPEN to anyone who can reach this port. "
                "Set it (comma-separated keys) before exposing the server beyond this machine."
            )
        await engine.start()
        sweeper = asyncio.create_task(_sweep_forever(store, min(60.0, settings.image_ttl_seconds)))
        try:
            yield
        finally:
            sweeper.cancel()
            await engine.close()

    app = FastAPI(
        title="imagegen",
        summary="An OpenAI-compatible image API on open diffusion models.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.services = Services(settings=settings, engine=engine, store=store, served=served,
                                  metrics=metrics_registry(store, settings.storage_max_bytes))
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(playground.router)
    for router in (images.router, models.router, temp_images.router):
        app.include_router(router, prefix="/v1")
    # The last added runs first: CORS (so preflights and 401s carry its headers), then the
    # key, then the body limits, before any route reads the body; JSON routes read JSON.
    app.add_middleware(JsonByDefault, paths=("/images/generations",))
    app.add_middleware(BodyLimit, max_file_bytes=settings.max_upload_mb * MB,
                       max_body_bytes=settings.max_request_mb * MB)
    app.add_middleware(BearerAuth, keys=settings.api_keys)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["x-should-retry", "retry-after", "retry-after-ms"])
    return app
