"""The ASGI app at /mcp, with the MCP SDK imported on the first request to it.

The SDK takes half a second or more to import (its protocol types are large pydantic models);
`imagegen serve` answers /health before that, and a server no agent talks to never pays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Scope, Send

from handlers.deps import Services
from handlers.http_errors import error_response
from pipelines.contract import errors


class McpEndpoint:
    """The SDK's session manager runs once per start of the app (its lifespan) and is entered
    and left in one task, so a task of its own holds it, from the first request to /mcp until
    the app stops."""

    def __init__(self, services: Services, max_body_bytes: int) -> None:
        self.services = services
        self.max_body_bytes = max_body_bytes
        self._stop: asyncio.Event | None = None  # there while the app runs, set as it stops
        self._manager: asyncio.Future[Any] | None = None
        self._holder: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        stop = self._stop = asyncio.Event()
        try:
            yield
        finally:
            stop.set()
            self._stop = None
            holder, self._holder, self._manager = self._holder, None, None
            if holder is not None:
                await holder

    async def _hold(self, stop: asyncio.Event, manager: asyncio.Future[Any]) -> None:
        try:
            server = await asyncio.to_thread(importlib.import_module, "handlers.mcp.server")
            running = server.session_manager(self.services, self.max_body_bytes)
            async with running.run():
                manager.set_result(running)
                await stop.wait()
        except Exception as exc:
            if manager.done():
                raise
            manager.set_exception(exc)  # before it ran: the requests waiting for it fail with it

    async def _running_manager(self) -> Any:
        """The SDK's session manager, started by the first request; None once the app stops."""
        if self._stop is None or self._stop.is_set():
            return None
        if self._manager is None:
            self._manager = asyncio.get_running_loop().create_future()
            self._holder = asyncio.create_task(self._hold(self._stop, self._manager))
        manager = await asyncio.shield(self._manager)  # a caller gone does not stop the start
        return None if self._stop is None or self._stop.is_set() else manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = await self._running_manager()
        if manager is None:
            await error_response(errors.shutting_down())(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)
