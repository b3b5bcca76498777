"""The app factory: the same FastAPI app locally and on Modal, around whichever Engine and store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from handlers.auth import BearerAuth
from handlers.deps import Services
from handlers.http_errors import install_error_handlers
from handlers.images import routes as images
from handlers.images.respond import answer_job
from handlers.jobs import routes as jobs_routes
from handlers.jobs.outbox import Outbox
from handlers.jobs.results import ResultsApart
from handlers.jobs.runner import JobRunner
from handlers.jobs.ssrf import WebhookGuard
from handlers.jobs.store import JobStore, SQLiteJobStore
from handlers.jobs.webhooks import WebhookSender
from handlers.jobs.work import Work
from handlers.json_body import JsonByDefault
from handlers.limits import MB, BodyLimit, BodyPace
from handlers.mcp.endpoint import McpEndpoint
from handlers.metrics import Telemetry
from handlers.provenance.credentials import ContentCredentials
from handlers.request_log import RequestLog
from handlers.route_names import RouteNames
from handlers.routes import health, metrics, models, playground, temp_images
from handlers.settings import ServerSettings
from handlers.stores.core import ImageStore
from pipelines.contract.engine import Engine
from pipelines.contract.job import Rendered
from pipelines.contract.served import ServedModels

log = logging.getLogger("imagegen")


async def _sweep_forever(services: Services, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        for what, sweep in (("temp images", services.store.sweep), ("job records", services.jobs.sweep)):
            try:
                removed = await run_in_threadpool(sweep)
                if removed:
                    log.info("swept %d expired %s", removed, what)
            except Exception:  # a failed sweep must not end the sweeping
                log.exception("%s sweep failed", what)
        if services.jobs.outbox is not None:  # owed webhooks nobody sends (a dead front's), from any front
            try:
                await services.jobs.outbox.send_owed()
            except Exception:
                log.exception("sending owed webhooks failed")


def _webhooks(settings: ServerSettings) -> WebhookSender | None:
    if not settings.webhook_secret:
        return None
    return WebhookSender(
        settings.webhook_secret,
        WebhookGuard(settings.webhook_hosts, settings.webhook_nameserver),
        attempts=settings.webhook_attempts,
        backoff_seconds=settings.webhook_backoff_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
    )


def create_app(
    settings: ServerSettings,
    engine: Engine,
    store: ImageStore,
    served: ServedModels,
    job_store: JobStore | None = None,
    *,
    recover_jobs: bool = True,
    signing_store: Any = None,
) -> FastAPI:
    """`job_store`: where job records live (default: SQLite beside the temp images); with
    `recover_jobs`, the jobs a previous run left unfinished are queued again at start;
    `signing_store`: where the local signing identity is kept for every server sharing it
    (a modal.Dict; default: the cache dir)."""
    telemetry = Telemetry(engine, store, settings.storage_max_bytes)
    credentials = ContentCredentials.configured(
        settings.c2pa, settings.c2pa_cert, settings.c2pa_key, settings.cache_dir, signing_store
    )
    runner = JobRunner(
        # Large results (base64 images) live beside the images, not in the records.
        ResultsApart(job_store or SQLiteJobStore(settings.storage_dir / "jobs.sqlite3"), store),
        engine,
        ttl_seconds=settings.image_ttl_seconds,
        per_key=settings.jobs_per_key,
        total=settings.jobs_max_unfinished,
        in_engine=settings.jobs_in_engine,
        recover=recover_jobs,
        lease_seconds=settings.jobs_lease_seconds,
    )
    services = Services(
        settings=settings,
        engine=engine,
        store=store,
        served=served,
        metrics=telemetry.registry,
        jobs=runner,
        credentials=credentials,
        webhooks=_webhooks(settings),
    )
    # Agents' tools (MCP's Streamable HTTP transport), behind the same keys, limits and log as /v1;
    # the SDK is imported on the first call.
    mcp = McpEndpoint(services, max_body_bytes=settings.max_request_mb * MB)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.api_keys:
            log.warning(
                "IMAGEGEN_API_KEYS is not set: the API is OPEN to anyone who can reach this port. "
                "Set it (comma-separated keys) before exposing the server beyond this machine."
            )
        await engine.start()

        async def answer(rendered: Rendered, work: Work) -> dict[str, Any]:
            body = await answer_job(rendered, work.job, work.request, work.base_url, services)
            return body.model_dump(mode="json", exclude_none=True)

        webhooks = services.webhooks
        await services.jobs.start(answer, Outbox(services.jobs.store, webhooks) if webhooks else None)
        sweeper = asyncio.create_task(_sweep_forever(services, min(60.0, settings.image_ttl_seconds)))
        try:
            async with mcp.running():
                yield
        finally:
            sweeper.cancel()
            await services.jobs.close()
            await engine.close()

    # The docs' Swagger UI and ReDoc assets come from the fastapi-offline package: no CDN.
    app = FastAPIOffline(
        title="imagegen",
        summary="An OpenAI-compatible image API on open diffusion models.",
        version="0.1.0",
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(playground.router)
    # Declared, not enforced, here (BearerAuth enforces): the schema's Authorize button, and
    # clients generated from it, then know to send the key.
    keyed = [Depends(HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk-...`."))]
    for router in (images.router, jobs_routes.router, models.router):
        app.include_router(router, prefix="/v1", dependencies=keyed)
    app.include_router(temp_images.router, prefix="/v1")
    app.router.add_route("/mcp", mcp, include_in_schema=False)
    # The last added runs first: the request's id and log line around everything, CORS (so
    # preflights and 401s carry its headers), then the key, then the body limits, before any
    # route reads the body; JSON routes read JSON.
    app.add_middleware(JsonByDefault, paths=("/images/generations",))
    app.add_middleware(
        BodyLimit,
        max_file_bytes=settings.max_upload_mb * MB,
        max_body_bytes=settings.max_request_mb * MB,
        max_json_bytes=settings.max_json_kb * 1024,
        pace=BodyPace(settings.body_grace_seconds, settings.min_body_bytes_per_second),
        image_json_paths=("/mcp",),
    )
    app.add_middleware(BearerAuth, keys=settings.api_keys, metrics_public=settings.metrics_public)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=["x-should-retry", "retry-after", "retry-after-ms", "x-request-id"],
        )
    app.add_middleware(RequestLog, telemetry=telemetry, routes=RouteNames(app.router.routes))
    return app
