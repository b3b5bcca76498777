"""Liveness (/health: the process answers) and readiness (/health/ready: it can serve)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from handlers.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Answers at once, before any model is loaded and while images are being made."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "Not ready: a model is loading, or every one failed."}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Each model's state (not_loaded: loads on first use; loading; ready; failed, with why;
    remote: a GPU pool that starts on demand). Ready unless a model is loading or none can serve."""
    statuses = services.engine.status()
    models: dict[str, Any] = {
        model: {
            "state": status.state,
            "reason": status.reason,
            "load_seconds": status.load_seconds,
            "waiting": status.waiting,
            "running": status.running,
        }
        for model, status in statuses.items()
    }
    states = {status.state for status in statuses.values()}
    is_ready = "loading" not in states and states != {"failed"}
    return JSONResponse(
        {"status": "ready" if is_ready else "not_ready", "models": models}, status_code=200 if is_ready else 503
    )
