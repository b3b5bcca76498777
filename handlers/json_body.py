"""JSON routes read a JSON body whatever the client forgot to say about it.

`curl -d '{"prompt": …}'` without `-H "Content-Type: application/json"` sends the body as a
form (`application/x-www-form-urlencoded`); some HTTP clients send no type at all. FastAPI
would then see a string, not an object, and refuse it. On the routes that only take JSON, such
a body is read as the JSON it is (a body that is not JSON still gets the usual clear 400).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_UNDECLARED = (b"", b"application/x-www-form-urlencoded", b"text/plain")


class JsonByDefault:
    """ASGI middleware: on `paths`, a body declared as nothing, a form or plain text is JSON."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(self.paths):
            headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
            declared = next((value for name, value in scope["headers"] if name == b"content-type"), b"")
            if declared.split(b";")[0].strip().lower() in _UNDECLARED:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
