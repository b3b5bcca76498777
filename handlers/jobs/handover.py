"""The runner's side of leases (leases.py): jobs handed over between fronts. A job whose front is
gone is taken up here and queued again (its seeds make the same images), or failed with the
reason it cannot be; a job another front took from this one stops here without a word written.

A part of `JobRunner` (runner.py), kept apart to keep that file readable: it uses the runner's
lines, records and writes as the runner's own methods do."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from handlers.http_errors import error_body
from handlers.jobs.job_errors import job_lost
from handlers.jobs.leases import SOLE_HOLDER, Leases
from handlers.jobs.records import JobRecord
from handlers.jobs.work import Work

if TYPE_CHECKING:
    from handlers.jobs.runner import JobRunner

log = logging.getLogger("imagegen")


class Handover:
    leases: Leases
    _keeper: asyncio.Task[None] | None = None

    def _hold_leases(self: JobRunner, seconds: float) -> None:
        # A server that owns its store alone (`recover`) holds its leases under one name across
        # restarts; fronts sharing a store (Modal's) each under a name of their own.
        self.leases = Leases(self.store, seconds, SOLE_HOLDER if self.recover else None)

    def _keep_leases(self: JobRunner) -> None:
        self._keeper = asyncio.create_task(self.leases.keep(lambda: list(self._records), self._lose, self._adopt))

    async def _let_go(self: JobRunner, held: list[str]) -> None:
        """Stopping: leases no longer renewed, and let go at once, so another front takes the jobs up now."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self.leases.release(held)

    async def take_up_if_lost(self: JobRunner, record: JobRecord) -> None:
        """A client reads the job: if its front is gone, it is taken up here now, not at the next look."""
        if record.done or record.id in self._records or self._closing:
            return
        if await asyncio.to_thread(self.leases.take_lapsed, record.id):
            await self._adopt(record)

    async def _adopt(self: JobRunner, found: JobRecord) -> None:
        """A job held here now whose front is gone (its lease lapsed)."""
        await self._run_again(
            found.id, cause="the front running it stopped, and ", where="by the front that took it up", now="here"
        )

    async def _run_again(self: JobRunner, job_id: str, *, cause: str, where: str, now: str) -> None:
        """An unfinished job whose run is gone (a restart, a dead front), held here now: queued again
        (its seeds make the same images), or failed with the reason it cannot be."""
        record = await asyncio.to_thread(self.store.get, job_id)
        if record is None or record.done or record.id in self._records:
            return
        try:
            work = Work.load(record.payload)
            if work.job.model not in self.engine.status():
                raise ValueError(f"its model {work.job.model} is no longer served {where}")
        except ValueError as why:
            self._end(record, "failed", error=error_body(job_lost(f"{cause}{why}"))["error"])
            await self._persist(record)
            self._notify(record)
            return
        record.status, record.started_at, record.step = "queued", None, 0
        await self._persist(record)
        self._queue(record, work)
        log.info("job %s queued again %s", record.id, now)

    def _lose(self: JobRunner, job_id: str) -> None:
        """Another front took the job (this one was too slow to renew it): stopped here, unwritten."""
        record = self._records.get(job_id)
        if record is not None and job_id in self._lines[record.model]:
            self._lines[record.model].remove(job_id)
            self._forget(job_id)
        elif (task := self._tasks.get(job_id)) is not None:
            task.cancel()  # `_run` leaves a cancelled job's record to whoever holds it now
