"""Bearer-key auth for /v1 and /mcp, checked before anything else reads the request."""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.http_errors import error_response
from pipelines.contract.errors import APIError

# Temp images are capability URLs (unguessable ids), fetched by browsers and other servers
# that hold no key, as OpenAI's are.
_OPEN_PREFIXES = ("/v1/temp-images/",)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def key_matches(presented: str, keys: list[str]) -> bool:
    """Constant-time against every key, so timing tells nothing about which keys exist.

    Digests of equal length are compared, because `compare_digest` returns at once on a
    length mismatch and would give away each key's length.
    """
    presented_digest = _digest(presented)
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented_digest, _digest(key))
    return found


class BearerAuth:
    """ASGI middleware: a 401 in OpenAI's shape unless `Authorization: Bearer <key>` matches."""

    def __init__(self, app: ASGIApp, keys: list[str], metrics_public: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._protected(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            APIError(
                "unauthenticated",
                "Incorrect API key provided. Pass it as 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
        )
        await response(scope, receive, send)

    def _protected(self, path: str) -> bool:
        if not self.keys:
            return False
        if path == "/metrics":
            return not self.metrics_public
        if path == "/mcp" or path.startswith("/mcp/"):
            return True
        return (path == "/v1" or path.startswith("/v1/")) and not path.startswith(_OPEN_PREFIXES)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and key_matches(token.strip(), self.keys)
        return False
