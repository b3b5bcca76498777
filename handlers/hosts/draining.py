"""A uvicorn server that stops within a bound: on SIGTERM it tells the engine at once.

uvicorn alone stops accepting connections and waits for every open request, however long the
queue behind them. Here the engine hears of the signal the moment it arrives, so the waiting
jobs that could not finish in time are answered (a retryable 503) while their clients are still
there, and uvicorn's own graceful timeout is the hard bound after which the rest are cut off.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn

from pipelines.contract.engine import Engine


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, engine: Engine, seconds: float) -> None:
        super().__init__(config)
        self.engine = engine
        self.seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit and self._loop is not None:
            # A signal handler runs between two bytecodes of whatever the loop was doing: hand
            # the drain to the loop rather than touch its queues from here.
            self._loop.call_soon_threadsafe(self.engine.drain, self.seconds)
        super().handle_exit(sig, frame)
