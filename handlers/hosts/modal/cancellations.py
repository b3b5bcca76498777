"""Cancellations that cannot be lost: the front records each one in a `modal.Dict`, keyed by the
call's cancel key, and the GPU side looks there before it starts and while it runs.

`FunctionCall.cancel()` needs a call id, and sometimes there is none yet: a stream's id arrives as
its first item, after the container has started (a caller who leaves during a cold start, the
common case in a burst), and a caller can leave while `spawn` itself is in flight. The Dict needs
only the key the front made before it sent anything, so the GPU side finds the cancellation
whenever it looks, and a job whose caller left before it took the GPU never runs.

A `modal.Dict` (modal 1.6.4, `modal/dict.py`): keys and values cross by cloudpickle, so the keys
are plain strings; an entry expires after 7 days without reads or writes, so nothing here needs
sweeping. Only the `.aio` methods are used: the blocking forms would stall the event loop.
Importing this module imports no `modal` (the front imports on machines without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from pipelines.contract import errors

log = logging.getLogger("imagegen")

# How often a running job asks whether its caller has gone (one small Dict read per job). Between
# two looks a step or two may still run; `FunctionCall.cancel()`, where there is a call id, is
# immediate, and this is the backstop for when there is none.
POLL_SECONDS = 1.0


class Cancellations:
    """The app's cancellation record: `record` on the front, `watching` on the GPU side.

    `store` is a `modal.Dict` (`modal.Dict.from_name(...)`, hydrated on first use) or, in tests,
    the fake control plane's Dict; None records nothing (a deployment without one)."""

    def __init__(self, store: Any | None, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds

    async def record(self, key: str) -> None:
        """Note that nobody waits for `key`'s work any more. Failures are logged, not raised: the
        Job's deadline still stops the work."""
        if self.store is None:
            return
        try:
            await self.store.put.aio(key, time.time())
        except Exception:
            log.warning("recording the cancellation of %s failed; its deadline will stop it", key, exc_info=True)

    async def cancelled(self, key: str | None) -> bool:
        """Whether `key`'s caller has gone (False when it cannot be told: the work goes on)."""
        if self.store is None or key is None:
            return False
        try:
            return bool(await self.store.contains.aio(key))
        except Exception:
            log.warning("reading the cancellation of %s failed", key, exc_info=True)
            return False

    @contextlib.asynccontextmanager
    async def watching(self, key: str | None, what: str) -> AsyncIterator[None]:
        """Run the body unless `key` was cancelled before it began (then `cancelled`, and nothing
        runs), and cancel the body's task if `key` is cancelled while it runs, as Modal's own
        cancel does (the task's cancellation leaves the engine's queue or stops its steps)."""
        if self.store is None or key is None:
            yield
            return
        if await self.cancelled(key):
            log.info("%s: its caller left before it started; skipped", what)
            raise errors.cancelled()
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.ensure_future(self._watch(key, task, what))
        try:
            yield
        finally:
            watcher.cancel()

    async def _watch(self, key: str, task: asyncio.Task[Any], what: str) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            if await self.cancelled(key):
                log.info("%s: its caller left; stopping it", what)
                task.cancel()
                return
