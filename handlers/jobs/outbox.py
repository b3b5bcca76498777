"""The webhook outbox: a job's end is owed to its `webhook_url` until delivered or given up.

The write that makes a job terminal also says its webhook is owed (`webhook_owed`; in SQLite a
row of the `webhooks` table in the same transaction), so a webhook outlives the process that
owed it: killed, or stopped while it was retrying. The front where the job ended sends it at
once; at start, and at every sweep of any front, the owed ones nobody is sending go out again.

Two fronts never send the same one at once: a sender first claims it in the store, until past
the longest a delivery can take (every attempt, its timeout and the waits between). A dead
front's claim lapses and the next sweep takes it over; a server that owns its storage (it
recovers the jobs there at start) takes its own old claims over at once. Delivered, or given up
after the attempts (logged by the sender), it is settled and never sent again. Its `webhook-id`
names the job and its state, the same across attempts, fronts and restarts, so a receiver
deduplicates the rare second delivery (a front that died between the receiver's 2xx and the
settling).

Shutdown: deliveries in flight get `grace_seconds` to end; those still retrying then stop, their
claims given up, still owed: the next start (or another front's sweep) sends them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time

from handlers.jobs.records import JobRecord, job_body
from handlers.jobs.store import JobStore
from handlers.jobs.webhooks import WebhookSender

log = logging.getLogger("imagegen")

_CLAIM_MARGIN_SECONDS = 30.0  # besides the attempts: name resolution, the store's own calls


class Outbox:
    def __init__(self, store: JobStore, sender: WebhookSender, *, grace_seconds: float = 5.0) -> None:
        self.store, self.sender, self.grace_seconds = store, sender, grace_seconds
        self._sending: dict[str, asyncio.Task[None]] = {}

    def send(self, record: JobRecord, *, take_over: bool = False) -> None:
        """Send the ended job's webhook in the background (unless this front sends it already)."""
        if record.id in self._sending:
            return
        # A context of its own: not the request's (or job's) log record.
        task = asyncio.create_task(self._send(record, take_over), context=contextvars.Context())
        self._sending[record.id] = task
        task.add_done_callback(lambda _: self._sending.pop(record.id, None))

    async def send_owed(self, *, take_over: bool = False) -> int:
        """Send every owed webhook nobody else is sending; how many were owed."""
        owed = await asyncio.to_thread(self.store.owed)
        for record in owed:
            self.send(record, take_over=take_over)
        return len(owed)

    async def _send(self, record: JobRecord, take_over: bool) -> None:
        until = time.time() + self.sender.longest_seconds() + _CLAIM_MARGIN_SECONDS
        if not await asyncio.to_thread(self.store.claim_webhook, record.id, until, take_over):
            return  # settled meanwhile, or another front is sending it
        try:
            if record.result_blob is not None:  # a listed record: its result, read only now it is ours
                found = await asyncio.to_thread(self.store.get, record.id)
                if found is None:  # expired meanwhile: nothing to send
                    await asyncio.to_thread(self.store.settle_webhook, record.id)
                    return
                record = found
            await self.sender.deliver(job_body(record))  # False: given up after the attempts (logged)
        except asyncio.CancelledError:  # stopping: still owed, for the next start or another front
            await asyncio.to_thread(self.store.release_webhook, record.id)
            log.info("webhook for job %s still owed: sent at the next start", record.id)
            raise
        except Exception:
            log.exception("webhook for job %s failed; still owed", record.id)
            await asyncio.to_thread(self.store.release_webhook, record.id)
            return
        await asyncio.to_thread(self.store.settle_webhook, record.id)

    async def close(self) -> None:
        """Give deliveries in flight `grace_seconds`; stop the rest, still owed."""
        pending = set(self._sending.values())
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
