"""Jobs that outlive the front that accepted them: a lease on each unfinished job, held by the
front running it (or holding it in its line) and renewed while it does; a job whose lease has
lapsed (its front died, scaled down or was replaced) is taken by another front and run again
(its seeds make the same images), or failed with the reason it cannot be.

Every front keeps its leases the same way, over the same `JobStore.hold`: SQLite locally (one
process owns the file, so it takes its jobs back at once after a restart: it holds every lease
under one name), a modal.Dict on Modal (each front container a name of its own).

Why 30 s by default: a renewal every 10 s gives a front two more chances before its lease lapses,
through a slow Dict call or an event loop busy for a few seconds (a large upload, signing images),
and a front that dies mid-job has its jobs taken up within about a minute: every front looks at
least once a lease, and again whenever a client reads one of the jobs. On Modal a front container
lives for its requests (a function scales to zero when it has no inputs), not for the jobs it
runs as tasks; when it is stopped in order (scale-down, redeploy), its ASGI lifespan shutdown runs
(`modal/_runtime/user_code_imports.py`) and the runner lets its leases go at once, so the next
front to look takes them up without waiting for the lapse. A crash or a preemption just stops
the renewals.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from handlers.jobs.records import JobRecord
from handlers.jobs.store import JobStore

log = logging.getLogger("imagegen")

DEFAULT_LEASE_SECONDS = 30.0
# The one name of a server that owns its store alone (local mode): after a restart it holds its
# jobs' leases again at once.
SOLE_HOLDER = "this-server"


class Leases:
    """This front's leases on the jobs it holds. `mine()` lists them, `lost(id)` is told of one
    that another front has taken (this one was too slow to renew it), `adopt(record)` of a job
    whose front is gone, once this front holds it."""

    def __init__(self, store: JobStore, seconds: float = DEFAULT_LEASE_SECONDS, holder: str | None = None) -> None:
        self.store, self.seconds = store, seconds
        self.holder = holder or f"front-{uuid.uuid4().hex[:12]}"

    def take(self, job_id: str) -> bool:
        """Hold a new job (blocking): before its record is written, so no other front takes it."""
        return self.store.hold(job_id, self.holder, self.seconds)

    def take_lapsed(self, job_id: str) -> bool:
        """Hold a job only if nobody holds it now (blocking); atomic, so one front gets it."""
        return self.store.holder(job_id) is None and self.store.hold(job_id, self.holder, self.seconds)

    async def keep(
        self,
        mine: Callable[[], list[str]],
        lost: Callable[[str], None],
        adopt: Callable[[JobRecord], Awaitable[None]],
    ) -> None:
        """Forever: renew this front's leases a few times a lease, and look for lapsed ones each lease."""
        looked = float("-inf")
        while True:
            try:
                for job_id in mine():
                    if not await asyncio.to_thread(self.store.hold, job_id, self.holder, self.seconds):
                        log.warning("job %s: another front took it (its lease here lapsed); stopping it here", job_id)
                        lost(job_id)
                if time.monotonic() - looked >= self.seconds:
                    looked = time.monotonic()
                    await self.look(mine, adopt)
            except Exception:  # the store briefly away: the next round tries again
                log.exception("keeping job leases failed")
            await asyncio.sleep(self.seconds / 3)

    async def look(self, mine: Callable[[], list[str]], adopt: Callable[[JobRecord], Awaitable[None]]) -> None:
        """Take up every unfinished job whose front is gone."""
        for record in await asyncio.to_thread(self.store.unfinished):
            if record.id not in mine() and await asyncio.to_thread(self.take_lapsed, record.id):
                await adopt(record)

    async def release(self, job_ids: list[str]) -> None:
        """Let these jobs go now (this front is stopping): the next front to look takes them."""
        for job_id in job_ids:
            try:
                await asyncio.to_thread(self.store.hold, job_id, self.holder, 0)
            except Exception:  # they lapse on their own
                log.warning("releasing job %s failed; its lease lapses by itself", job_id, exc_info=True)
