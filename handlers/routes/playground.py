"""GET / and /playground/{name}: the playground, a single page served from files in the package
(no CDN, no build). Every URL in the page is relative, so it also works under a proxy's prefix."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from pipelines.contract.errors import APIError

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent.parent / "playground"

# Only these files are served, by name: a request never becomes a path on disk.
ASSETS = {
    "playground.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "stream.js": "text/javascript; charset=utf-8",
    "mask.js": "text/javascript; charset=utf-8",
    "snippets.js": "text/javascript; charset=utf-8",
    "gallery.js": "text/javascript; charset=utf-8",
    "made_with.js": "text/javascript; charset=utf-8",
    "jobs.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
# The page is small and changes with the server: revalidate instead of caching stale copies.
_HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}


@router.get("/")
async def playground() -> FileResponse:
    return FileResponse(PAGE / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/playground/{name}")
async def playground_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise APIError("not_found", f"Unknown request URL: GET /playground/{name}.", code="unknown_url")
    return FileResponse(PAGE / name, media_type=media_type, headers=_HEADERS)
