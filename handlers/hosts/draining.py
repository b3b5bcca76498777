"""A uvicorn server that stops within a bound: on SIGTERM it tells the engine at once.

uvicorn alone stops accepting connections and waits for every open request, however long the
queue behind them; at its graceful timeout it cancels what is left and answers those requests
with its own text/plain 500 (no `x-should-retry`), then waits for the running job's thread. Here
the engine hears of the signal the moment it arrives, so the waiting jobs that could not finish
in time are answered (a retryable 503) while their clients are still there. What is still in
flight at the cut-off (a fifth of the bound before it ends: a job that ran longer than its
estimate, a client still sending its body) is answered the same 503 in OpenAI's error JSON and
stopped (a running job at its next step), so the process is gone within the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.http_errors import error_response
from pipelines.contract import errors
from pipelines.contract.engine import Engine

# What is kept back from the bound for answering and exiting (the lifespan's close, the process's end).
_KEPT_BACK = 0.2


class CutOff:
    """ASGI middleware: once `cut()` is called, every request still in flight is stopped; one
    whose response has not begun gets a retryable `503 shutting_down`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.event = asyncio.Event()

    def cut(self) -> None:
        self.event.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        request = asyncio.ensure_future(self.app(scope, receive, watched_send))
        cut = asyncio.ensure_future(self.event.wait())
        try:
            await asyncio.wait({request, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
            if not request.done():  # cut off (or uvicorn cancelled us): the request stops here
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
        if request.cancelled():
            if not started:
                await error_response(errors.shutting_down())(scope, receive, send)
            return
        request.result()  # its own outcome, exceptions included


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, engine: Engine, seconds: float) -> None:
        super().__init__(config)
        self.engine = engine
        self.seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cut_off: CutOff | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        if not self.config.loaded:
            self.config.load()
        self._cut_off = self.config.loaded_app = CutOff(self.config.loaded_app)
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit and self._loop is not None:
            # A signal handler runs between two bytecodes of whatever the loop was doing: hand
            # the drain to the loop rather than touch its queues from here.
            self._loop.call_soon_threadsafe(self.engine.drain, self.seconds)
            if self._cut_off is not None:
                self._loop.call_soon_threadsafe(
                    self._loop.call_later, (1 - _KEPT_BACK) * self.seconds, self._cut_off.cut
                )
        super().handle_exit(sig, frame)
