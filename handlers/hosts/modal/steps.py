"""A job's denoising steps, from the GPU container that runs it to the front that waits for it.

The front's engine sees nothing of a remote run but its result: a spawned call's `get` answers
once, and in modal 1.6.4 a `.spawn`ed function's only outputs are its return value
(`modal/_functions.py`; a generator cannot be spawned, and `remote_gen`'s items would have to
carry the result too). So the GPU side writes its steps into the same `modal.Dict` as the
cancellations, under the call's cancel key, and the front reads them into the request's
`JobTrace`, as a local run fills it in: an async job's progress and an MCP client's progress
notifications read it there. One small write per second while the steps move, one read per
second on the front, both only for runs someone watches (`JobTrace.watched`): a plain
synchronous request costs nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from handlers.hosts.modal.cancellations import POLL_SECONDS
from pipelines.contract.status import JobTrace, current_trace

log = logging.getLogger("imagegen")

_PREFIX = "steps:"


class RemoteSteps:
    """`reporting` on the GPU side, `following` on the front. `store` is a `modal.Dict` (or the
    fake control plane's); None reports nothing."""

    def __init__(self, store: Any | None, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.store, self.poll_seconds = store, poll_seconds

    @contextlib.asynccontextmanager
    async def reporting(self, key: str | None, wanted: bool) -> AsyncIterator[None]:
        """Inside, the engine's steps for this task's job are written under `key` as they change."""
        if self.store is None or key is None or not wanted:
            yield
            return
        trace = JobTrace()
        steps = [0]  # the run's steps in all, as the engine says with each step

        def on_step(done: int, of: int) -> None:
            steps[0] = of

        trace.on_step = on_step
        token = current_trace.set(trace)  # the engine fills in this task's trace
        sent: dict[str, Any] = {}
        writer = asyncio.ensure_future(self._write(key, trace, steps, sent))
        try:
            yield
        finally:
            writer.cancel()
            current_trace.reset(token)
        await self._put(key, trace, steps, sent)  # done: its last step, read before the answer arrives

    async def _write(self, key: str, trace: JobTrace, steps: list[int], sent: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self._put(key, trace, steps, sent)

    async def _put(self, key: str, trace: JobTrace, steps: list[int], sent: dict[str, Any]) -> None:
        now = {"queued": trace.queue_seconds, "done": trace.steps_done, "of": steps[0]}
        if now == sent:
            return
        try:
            await self.store.put.aio(_PREFIX + key, now)  # type: ignore[union-attr]
            sent.update(now)
        except Exception:  # progress is not worth failing the job for
            log.warning("writing the steps of %s failed", key, exc_info=True)

    @contextlib.asynccontextmanager
    async def following(self, key: str) -> AsyncIterator[None]:
        """Inside, the steps the GPU side writes under `key` go into the current request's trace
        (a last look once the answer is here: the run's last step)."""
        trace = current_trace.get()
        if self.store is None or trace is None or not trace.watched:
            yield
            return
        reader = asyncio.ensure_future(self._read(key, trace))
        try:
            yield
        finally:
            reader.cancel()
        # Only after an answer (a run stopped early leaves its entry to the Dict's 7-day expiry).
        await self._look(key, trace)
        with contextlib.suppress(Exception):
            await self.store.pop.aio(_PREFIX + key, None)  # read by nobody any more

    async def _read(self, key: str, trace: JobTrace) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self._look(key, trace)

    async def _look(self, key: str, trace: JobTrace) -> None:
        try:
            found = await self.store.get.aio(_PREFIX + key)  # type: ignore[union-attr]
        except Exception:
            log.warning("reading the steps of %s failed", key, exc_info=True)
            return
        if not found:
            return
        if trace.queue_seconds is None:
            trace.queue_seconds = found["queued"]  # started: how long it waited in its container
        if found["done"] > trace.steps_done:
            trace.steps_done = found["done"]
            if trace.on_step is not None:
                trace.on_step(found["done"], found["of"])
