"""GET /metrics: Prometheus' text format, for the operator's scraper (no key, as /health)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers.deps import ServicesDep

router = APIRouter()


@router.get(
    "/metrics", tags=["health"], response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def metrics(services: ServicesDep) -> Response:
    return Response(await run_in_threadpool(generate_latest, services.metrics), media_type=CONTENT_TYPE_LATEST)
