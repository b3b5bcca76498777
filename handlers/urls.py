"""Absolute URLs for temp images, as the caller (or the public internet) can reach them."""

from __future__ import annotations

from starlette.requests import Request


def public_base_url(request: Request, configured: str) -> str:
    """IMAGEGEN_PUBLIC_URL if set; else the request's own origin, honouring a proxy's headers."""
    if configured:
        return configured.rstrip("/")
    headers = request.headers
    # Behind a proxy the URL the browser used is in X-Forwarded-*; the first hop is the client's.
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip() or request.url.scheme
    host = headers.get("x-forwarded-host", "").split(",")[0].strip() or headers.get("host") or request.url.netloc
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{proto}://{host}{root}"


def temp_image_url(base_url: str, image_id: str) -> str:
    return f"{base_url}/v1/temp-images/{image_id}"
