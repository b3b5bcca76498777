"""The runner: accepted jobs onto the same Engine the synchronous requests use, a few at a time.

Ordering (why a synchronous request is never starved): each model's jobs wait in the runner's
own line, first come first served, and at most `jobs_in_engine` of them are in the engine's
queue at once. A synchronous request joins the engine's queue directly, so however many jobs
are waiting it has at most that many jobs ahead of it (plus the synchronous requests that came
before it); jobs and synchronous requests in the engine batch together as the engine decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from handlers.http_errors import error_body
from handlers.jobs.handover import Handover
from handlers.jobs.leases import DEFAULT_LEASE_SECONDS
from handlers.jobs.outbox import Outbox
from handlers.jobs.records import JobRecord, JobStatus, end, observe
from handlers.jobs.room import Room
from handlers.jobs.store import JobStore
from handlers.jobs.work import Work
from pipelines.contract import errors
from pipelines.contract.engine import Engine
from pipelines.contract.errors import APIError
from pipelines.contract.job import Rendered
from pipelines.contract.status import JobTrace, current_trace

log = logging.getLogger("imagegen")

Answer = Callable[[Rendered, Work], Awaitable[dict[str, Any]]]

_WATCH_SECONDS = 0.2  # how often a running job's progress is read
_FLUSH_SECONDS = 1.0  # how often it is written to the store (where other fronts read it)
_ENGINE_RETRIES = 10  # a busy engine (queue full, model loading) is waited for, not a failure


class _CancelledElsewhere(Exception):
    """Another front marked the job cancelled in the shared store."""


class JobRunner(Room, Handover):
    """Runs the jobs this front accepted (and those it took up from a front that is gone), keeps
    their records, and recovers them after a restart."""

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        *,
        ttl_seconds: int,
        per_key: int,
        total: int,
        in_engine: int,
        recover: bool = True,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.store, self.engine = store, engine
        self.ttl_seconds, self.per_key, self.total, self.in_engine = ttl_seconds, per_key, total, in_engine
        self.recover = recover
        self._hold_leases(lease_seconds)
        self.answer: Answer | None = None
        self.outbox: Outbox | None = None  # None: webhooks are off
        self._lines: dict[str, deque[str]] = defaultdict(deque)  # each model's waiting job ids
        self._records: dict[str, JobRecord] = {}  # the live records of this front's unfinished jobs
        self._work: dict[str, Work] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: Counter[str] = Counter()
        self._began: dict[str, float] = {}
        self._traces: dict[str, JobTrace] = {}  # what the engine says of each running job
        self._pace: dict[str, float] = {}  # recent seconds per job, by model
        self._admit = asyncio.Lock()
        # One writer thread: writes land in the order they were made (a cancel after a progress write).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imagegen-jobs")
        self._closing = False

    # --- the service's side -------------------------------------------------------------------

    async def start(self, answer: Answer, outbox: Outbox | None) -> None:
        self.answer, self.outbox = answer, outbox
        if self.recover:
            await self._recover()
        if outbox is not None:  # owning its storage (recovering), it takes its old claims over
            await outbox.send_owed(take_over=self.recover)
        self._keep_leases()

    async def submit(self, record: JobRecord, work: Work) -> JobRecord:
        """Admit the job (or a 429), write it, and queue it: when this returns it is durable."""
        async with self._admit:
            await asyncio.to_thread(self._check_room, record.owner)
            record.payload = work.dump()
            await asyncio.to_thread(self.leases.take, record.id)  # held here before any front can see it
            await self._persist(record)
        self._queue(record, work)
        log.info("job %s accepted: %s on %s", record.id, record.endpoint, record.model)
        return record

    def live(self, record: JobRecord) -> JobRecord:
        """This front's own, fresher copy of a running job (its progress), else the stored one."""
        return self._records.get(record.id, record)

    async def cancel(self, record: JobRecord) -> JobRecord:
        """Cancelled now: out of its line if waiting, stopped at its next step if running."""
        mine = self._records.get(record.id)
        if mine is None:  # not running here: finished meanwhile, or another front's
            record = await asyncio.to_thread(self.store.get, record.id) or record
            if record.done:
                return record
            mine = record
        if mine.done:
            return mine
        self._end(mine, "cancelled")
        line = self._lines[mine.model]
        if mine.id in line:
            line.remove(mine.id)
            self._forget(mine.id)
        task, trace = self._tasks.get(mine.id), self._traces.get(mine.id)
        if task is not None:
            task.cancel()
        else:  # perhaps running on another front: it reads this at its next progress write
            await asyncio.to_thread(self.store.ask_cancel, mine.id)
        await self._persist(mine)
        if task is not None:  # its place is free once it has stopped; it says at which step
            await asyncio.gather(task, return_exceptions=True)
            if trace is not None:
                mine.step = min(trace.steps_done, mine.steps)
                await self._persist(mine)
        log.info("job %s cancelled at step %d of %d", mine.id, mine.step, mine.steps)
        self._notify(mine)
        return mine

    def sweep(self) -> int:
        return self.store.sweep()

    async def close(self) -> None:
        """Stop without ending anything: unfinished jobs stay in the store, let go for another front
        (or the next start) to take up; webhooks still owed wait for the next start (or another front)."""
        self._closing = True
        held = list(self._records)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.outbox is not None:
            await self.outbox.close()
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        await self._let_go(held)

    # --- running ------------------------------------------------------------------------------

    def _queue(self, record: JobRecord, work: Work) -> None:
        self._records[record.id], self._work[record.id] = record, work
        self._lines[record.model].append(record.id)
        self._pump(record.model)

    def _pump(self, model: str) -> None:
        line = self._lines[model]
        while line and self._running[model] < self.in_engine and not self._closing:
            job_id = line.popleft()
            self._running[model] += 1
            # A context of its own: not the submitting request's log record or trace.
            self._tasks[job_id] = asyncio.create_task(self._run(job_id), context=contextvars.Context())

    async def _run(self, job_id: str) -> None:
        record, work = self._records[job_id], self._work[job_id]
        began = self._began[job_id] = time.monotonic()
        try:
            rendered = await self._on_engine(record, work)
            body = await self.answer(rendered, work)  # type: ignore[misc]
        except _CancelledElsewhere:  # the front that cancelled it told the webhook; the record is ours to write
            await self._persist(record)
            return
        except asyncio.CancelledError:
            return  # cancelled here (already recorded), or closing (left for the next start)
        except APIError as exc:
            if exc.code == "shutting_down":
                return  # the server is stopping: the job runs again at the next start
            self._end(record, "failed", error=error_body(exc)["error"])
        except Exception:
            log.exception("job %s failed", job_id)
            self._end(record, "failed", error=error_body(errors.internal_error())["error"])
        else:
            self._end(record, "completed", result=body)
            seconds = time.monotonic() - began
            self._pace[record.model] = 0.7 * self._pace.get(record.model, seconds) + 0.3 * seconds
        finally:
            self._running[record.model] -= 1
            self._forget(job_id)
            self._pump(record.model)
        await self._persist(record)
        log.info("job %s %s", job_id, record.status)
        self._notify(record)

    async def _on_engine(self, record: JobRecord, work: Work) -> Rendered:
        """The engine's images for the job, its progress read as it runs; a busy engine is waited for."""
        for attempt in range(_ENGINE_RETRIES + 1):
            trace = self._traces[record.id] = JobTrace(watched=True)
            current_trace.set(trace)  # the engine fills it in: when it started, steps done
            run = asyncio.ensure_future(self.engine.run(work.job))
            try:
                flushed, changed = time.monotonic(), False
                while True:
                    done, _ = await asyncio.wait({run}, timeout=_WATCH_SECONDS)
                    if done:
                        rendered = run.result()
                        await self._flush(record, write=False)  # a cancel made elsewhere meanwhile still holds
                        return rendered
                    changed = observe(record, trace) or changed
                    if time.monotonic() - flushed >= _FLUSH_SECONDS:
                        flushed = time.monotonic()
                        await self._flush(record, write=changed)
                        changed = False
            except APIError as exc:
                if not exc.retryable or exc.code == "shutting_down" or attempt == _ENGINE_RETRIES:
                    raise
                log.info("job %s waits %.1f s: %s", record.id, exc.retry_after or 1.0, exc.message)
                await asyncio.sleep(min(30.0, max(0.5, exc.retry_after or 1.0)))
            finally:
                run.cancel()  # cancelled here: the engine frees its place and skips the remaining steps
                with contextlib.suppress(BaseException):
                    await run
        raise AssertionError("unreachable")

    async def _flush(self, record: JobRecord, *, write: bool) -> None:
        """Progress to the store (when `write`); first, any cancel another front made (seen within a flush)."""
        if await asyncio.to_thread(self.store.cancel_asked, record.id):
            self._end(record, "cancelled")
            raise _CancelledElsewhere
        if write:
            await self._persist(record)

    def _end(self, record: JobRecord, status: JobStatus, **fields: Any) -> None:
        end(record, status, self.ttl_seconds, **fields)

    def _forget(self, job_id: str) -> None:
        for held in (self._records, self._work, self._tasks, self._began, self._traces):
            held.pop(job_id, None)

    async def _persist(self, record: JobRecord) -> None:
        snapshot = replace(record)  # as it is now, whatever changes before the writer gets to it
        await asyncio.get_running_loop().run_in_executor(self._writer, self.store.put, snapshot)

    def _notify(self, record: JobRecord) -> None:
        if record.webhook_owed and self.outbox is not None and not self._closing:  # else: the next start
            self.outbox.send(record)

    # --- after a restart ------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Every job the last run left unfinished: queued again (its seeds make the same images),
        or failed with the reason it cannot be."""
        for found in await asyncio.to_thread(self.store.unfinished):
            await self._run_again(found.id, cause="", where="here", now="after a restart")
