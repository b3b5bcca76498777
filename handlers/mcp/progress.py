"""A tool's denoising steps, told to the MCP client as progress notifications (step of steps).

The engine calls the request's `JobTrace.on_step` from the model's thread; here each step is
handed to the event loop and sent in order. Steps that come faster than they can be sent are
folded into the latest, and the last one is always sent before the result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from pipelines.contract.status import current_trace

Report = Callable[[float, float | None, str | None], Awaitable[None]]


@contextlib.asynccontextmanager
async def step_progress(report: Report | None) -> AsyncIterator[None]:
    """Inside, every step of the job the current request runs is reported through `report`
    (none: the client asked for no progress)."""
    trace = current_trace.get()
    if trace is None or report is None:
        yield
        return
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    sent: list[tuple[int, int]] = []

    def latest() -> tuple[int, int] | None:
        step = None
        while not steps.empty():
            step = steps.get_nowait()
        return step

    async def send(step: tuple[int, int]) -> None:
        assert report is not None
        done, of = step
        sent.append(step)
        await report(done, of, f"step {done} of {of}")

    async def sending() -> None:
        while True:
            await send(latest() or await steps.get())

    trace.on_step = lambda done, of: loop.call_soon_threadsafe(steps.put_nowait, (done, of))
    trace.watched = True
    sender = asyncio.create_task(sending())
    try:
        yield
    finally:
        trace.on_step = None
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    # The run is over: every step it made is queued by now (they were handed over before its result).
    last = latest()
    if last is not None and (not sent or sent[-1] != last):
        await send(last)
