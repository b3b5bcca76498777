"""Job records on a `modal.Dict`: every container of the web front reads and writes the same ones.

Per modal 1.6.4's `modal/dict.py`: values cross by cloudpickle (so a record is stored as its
JSON and payload, plain types only); iteration is unordered and visits the whole Dict (so the
listing sorts, and the sweep keeps it small: records go when their images do); an entry left
untouched for 7 days expires on its own, longer than any image TTL here. The calls are blocking,
and the runner makes them from worker threads, never on the event loop.

A webhook's sending is an entry of its own beside the record (`webhook:<id>`): `{"until": t}` while
a front sends it, `{"settled": True}` once done. A claim is `put(skip_if_exists=True)`, which
modal answers with whether it wrote, so of two fronts claiming at once one gets it. Taking over a
lapsed claim is a pop and that put again: two fronts doing so at the same moment can both send,
and the receiver deduplicates on the `webhook-id`, which is the same.

Leases: a modal.Dict has one atomic write, `put(key, value, skip_if_exists=True)`, which answers
whether it wrote (`DictUpdateRequest.if_not_exists`); no compare-and-set. So each taking of a
job is a new term, `lease:<id>:<n>`, written only if absent: of fronts taking term n at once,
one writes it. The holder renews its own term key by a plain put (no one else writes it); the
newest term is the lease. A front that took a lapsed lease while its old holder was only slow
(not gone) runs beside it until the old holder's next renewal, which finds the newer term and
stops: the job may run twice for a moment, to the same images (its seeds), never be lost.
"""

from __future__ import annotations

import time
from typing import Any

from handlers.jobs.records import JobRecord
from handlers.jobs.store import record_from, record_json

_PREFIX = "job:"
_CANCEL = "cancel:"
_WEBHOOK = "webhook:"
_LEASE = "lease:"


class ModalDictJobStore:
    """A `JobStore` over a `modal.Dict` (or anything with its get/put/pop/items)."""

    def __init__(self, records: Any) -> None:
        self.records = records

    def put(self, record: JobRecord) -> None:
        payload = None if record.done else record.payload  # a finished job keeps only its result
        self.records.put(_PREFIX + record.id, {"record": record_json(record), "payload": payload})

    def get(self, job_id: str) -> JobRecord | None:
        value = self.records.get(_PREFIX + job_id)
        return None if value is None else record_from(value["record"], value["payload"])

    def _all(self) -> list[JobRecord]:
        return [
            record_from(value["record"], None)
            for key, value in self.records.items()
            if isinstance(key, str) and key.startswith(_PREFIX)
        ]

    def owed(self) -> list[JobRecord]:
        entries = list(self.records.items())  # read twice below; modal gives a one-pass iterator
        settled = {
            key.removeprefix(_WEBHOOK)
            for key, value in entries
            if isinstance(key, str) and key.startswith(_WEBHOOK) and value.get("settled")
        }
        found = [
            record
            for key, value in entries
            if isinstance(key, str) and key.startswith(_PREFIX)
            for record in [record_from(value["record"], None)]
            if record.done and record.webhook_owed and record.id not in settled
        ]
        return sorted(found, key=lambda record: record.created_at)

    def claim_webhook(self, job_id: str, until: float, take_over: bool = False) -> bool:
        key = _WEBHOOK + job_id
        if self.records.put(key, {"until": until}, skip_if_exists=True):
            return True
        held = self.records.get(key)
        if held is not None and (held.get("settled") or (held["until"] > time.time() and not take_over)):
            return False
        self.records.pop(key, None)  # a lapsed claim (its front gone, or stopped): taken over
        return bool(self.records.put(key, {"until": until}, skip_if_exists=True))

    def release_webhook(self, job_id: str) -> None:
        held = self.records.get(_WEBHOOK + job_id)
        if held is not None and not held.get("settled"):
            self.records.pop(_WEBHOOK + job_id, None)

    def settle_webhook(self, job_id: str) -> None:
        self.records.put(_WEBHOOK + job_id, {"settled": True})

    def recent(self, owner: str, limit: int) -> list[JobRecord]:
        mine = [record for record in self._all() if record.owner == owner]
        return sorted(mine, key=lambda record: record.created_at, reverse=True)[:limit]

    def unfinished(self, owner: str | None = None) -> list[JobRecord]:
        found = [record for record in self._all() if not record.done and owner in (None, record.owner)]
        return sorted(found, key=lambda record: record.created_at)

    def sweep(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        expired = [record.id for record in self._all() if record.expired(now)]
        for job_id in expired:
            self.records.pop(_PREFIX + job_id, None)
            self.records.pop(_CANCEL + job_id, None)
            self.records.pop(_WEBHOOK + job_id, None)
            for term in range(1, self._newest(job_id)[0] + 1):
                self.records.pop(f"{_LEASE}{job_id}:{term}", None)
        return len(expired)

    def ask_cancel(self, job_id: str) -> None:
        self.records.put(_CANCEL + job_id, True)

    def cancel_asked(self, job_id: str) -> bool:
        return bool(self.records.get(_CANCEL + job_id))

    def _newest(self, job_id: str) -> tuple[int, dict[str, Any] | None]:
        """The newest term of the job's lease and its value ((0, None): never taken)."""
        term, value = 0, None
        while (found := self.records.get(f"{_LEASE}{job_id}:{term + 1}")) is not None:
            term, value = term + 1, found
        return term, value

    def hold(self, job_id: str, holder: str, seconds: float) -> bool:
        now = time.time()
        term, lease = self._newest(job_id)
        value = {"holder": holder, "until": now + seconds}
        if lease is not None and lease["holder"] == holder:  # ours: renewed (only we write this term)
            self.records.put(f"{_LEASE}{job_id}:{term}", value)
            return True
        if lease is not None and lease["until"] > now:
            return False
        return bool(self.records.put(f"{_LEASE}{job_id}:{term + 1}", value, skip_if_exists=True))

    def holder(self, job_id: str) -> str | None:
        _, lease = self._newest(job_id)
        return lease["holder"] if lease is not None and lease["until"] > time.time() else None
