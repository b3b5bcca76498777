"""How many unfinished jobs fit, and when a place frees: the 429 and its honest Retry-After.

A part of `JobRunner` (runner.py), kept apart to keep that file readable: it reads the runner's
lines, running jobs and their recent pace."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from handlers.jobs.job_errors import too_many_jobs
from handlers.jobs.records import JobRecord

if TYPE_CHECKING:
    from handlers.jobs.runner import JobRunner

_UNKNOWN_PACE_SECONDS = 5.0  # a job's length before any has finished here


class Room:
    def _check_room(self: JobRunner, owner: str) -> None:
        unfinished = self.store.unfinished()
        mine = [record for record in unfinished if record.owner == owner]
        if len(mine) >= self.per_key:
            raise too_many_jobs(
                f"This API key has {len(mine)} unfinished jobs, the most it may have.", self._soonest(mine)
            )
        if len(unfinished) >= self.total:
            raise too_many_jobs(
                f"The server has {len(unfinished)} unfinished jobs, the most it takes.", self._soonest(unfinished)
            )

    def _soonest(self: JobRunner, records: list[JobRecord]) -> float:
        """Seconds until the first of `records` ends (a place frees), at the recent pace."""
        return min(self._eta(record) for record in records)

    def _eta(self: JobRunner, record: JobRecord) -> float:
        pace = self._pace.get(record.model, _UNKNOWN_PACE_SECONDS)
        now = time.monotonic()
        if record.id in self._began:
            return max(0.5, pace - (now - self._began[record.id]))
        running = [
            max(0.5, pace - (now - began))
            for job_id, began in self._began.items()
            if self._records[job_id].model == record.model
        ]
        line = list(self._lines[record.model])
        ahead = line.index(record.id) if record.id in line else 0
        return min(running, default=0.0) + pace * (ahead // self.in_engine + 1)
