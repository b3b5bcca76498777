"""GET /: the playground, a single page served from files in the package (no CDN, no build)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent.parent / "playground"


@router.get("/")
async def playground() -> FileResponse:
    return FileResponse(PAGE / "index.html", media_type="text/html", headers={"cache-control": "no-cache"})
