"""One HTTP request to an ASGI app, driven as Modal's web container drives it.

What is real: modal 1.6.4's own `asgi_app_wrapper` (`modal/_runtime/asgi.py`), which runs the app
in a `TaskContext`, feeds it the request's messages from the input's `data_in` stream and yields
what the app sends. What is faked is that stream, Modal's side of the wire (`get_data_in` on the
container's io manager): the request's messages, then, when a test says, `http.disconnect`.
A test ends a request as Modal can: a disconnect delivered as a message (`hang_up`), or the
input cancelled, which cancels the task consuming the wrapper and, through its `TaskContext`,
the app's own task (`cancel`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from modal._runtime.asgi import asgi_app_wrapper
from modal._runtime.execution_context import _set_current_context_ids

from tests.conftest import API_KEY


class _DataIn:
    """`container_io_manager.get_data_in`, as the wrapper calls it: `.aio(call_id, attempt)`."""

    def __init__(self, messages: asyncio.Queue[dict[str, Any]]) -> None:
        self.messages = messages

    async def aio(self, function_call_id: str, attempt_token: str | None) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.messages.get()


class _IoManager:
    def __init__(self, messages: asyncio.Queue[dict[str, Any]]) -> None:
        self.get_data_in = _DataIn(messages)


class ModalRequest:
    """One request in flight through Modal's ASGI layer; `sent` collects the app's messages."""

    def __init__(self, app: Any, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        self.app = app
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.first_sent = asyncio.Event()
        content = b"" if body is None else json.dumps(body).encode()
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"imagegen.modal.run"),
                (b"authorization", f"Bearer {API_KEY}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
            "client": ("203.0.113.7", 443),
            "server": ("imagegen.modal.run", 443),
        }
        self.messages.put_nowait({"type": "http.request", "body": content, "more_body": False})
        self.task = asyncio.ensure_future(self._consume())

    async def _consume(self) -> None:
        _set_current_context_ids(["in-web"], ["fc-web"], ["attempt"])
        fn, _ = asgi_app_wrapper(self.app, _IoManager(self.messages))
        async for message in fn(self.scope):
            self.sent.append(message)
            self.first_sent.set()

    def hang_up(self) -> None:
        """The client goes, and Modal says so in the request's message stream."""
        self.messages.put_nowait({"type": "http.disconnect"})

    async def cancel(self) -> None:
        """The client goes, and Modal cancels the input: the task reading the app's messages."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def answer(self, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """The whole response: status, headers, body."""
        await asyncio.wait_for(self.task, timeout)
        start = next(message for message in self.sent if message["type"] == "http.response.start")
        headers = {name.decode().lower(): value.decode() for name, value in start.get("headers", [])}
        body = b"".join(message.get("body", b"") for message in self.sent if message["type"] == "http.response.body")
        return start["status"], headers, body


async def lifespan(app: Any) -> Any:
    """The app's lifespan started as Modal's `LifespanManager` starts it; its `lifespan_shutdown`."""
    _, manager = asgi_app_wrapper(app, None)
    task = asyncio.ensure_future(manager.background_task())
    await manager.lifespan_startup()
    manager.task = task
    return manager
