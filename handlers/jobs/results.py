"""A completed job's result apart from its record: large ones are a blob in the image store.

A result is the synchronous body, so with `b64_json` it holds every image, megabytes. On Modal a
record is a `modal.Dict` value: modal 1.6.4 sends a value inline in its `DictUpdate` request (no
blob upload, unlike a function's inputs past 2 MiB) and turns the server's 413 into
`RequestSizeError`, and the listing, the limits and the sweep read every value. So a result
larger than `inline_bytes` is written to the image store (the images Volume on Modal, the storage
folder locally), published before the record that names it is written (any front can then read
it), and read back whenever the record is. A client sees the same `result` either way.

One code path for both stores (SQLite would hold the blob well): what runs locally is what runs
on Modal, and SQLite stays small (the listing and the limits never carry images either).

Expiry: the blob is stamped when it is written, after the job's end, so it lives (by the image
TTL) at least as long as its record, and the images' sweep deletes it like an image. A blob that
cannot be written (the store full or unreachable) leaves the result inline, as it was before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from handlers.jobs.records import JobRecord
from handlers.jobs.store import JobStore
from handlers.stores.core import BLOB_FORMAT, ImageStore
from pipelines.contract.errors import APIError

log = logging.getLogger("imagegen")

INLINE_BYTES = 4096  # a URL answer for 10 images fits; one base64 image does not


class ResultsApart:
    """A `JobStore` around another, keeping large results in `images`. `get` puts the result
    back; the lists (`recent`, `unfinished`, `owed`) leave it out, as their readers show no
    result or read the one job they need with `get`. Every other method is the wrapped store's."""

    def __init__(self, records: JobStore, images: ImageStore, *, inline_bytes: int = INLINE_BYTES) -> None:
        self.records, self.images, self.inline_bytes = records, images, inline_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)

    def put(self, record: JobRecord) -> None:
        self.records.put(self._stowed(record))

    def get(self, job_id: str) -> JobRecord | None:
        record = self.records.get(job_id)
        return None if record is None else self._resolved(record)

    def _stowed(self, record: JobRecord) -> JobRecord:
        if record.result is None or record.result_blob is not None:
            return record
        data = json.dumps(record.result, separators=(",", ":")).encode()
        if len(data) <= self.inline_bytes:
            return record
        try:
            blob = self.images.put(data, BLOB_FORMAT)
            self.images.publish_blocking()  # readable from every front before the record names it
        except (APIError, OSError) as exc:
            log.error("job %s: its result is kept in its record, not apart: %s", record.id, exc)
            return record
        return replace(record, result=None, result_blob=blob)

    def _resolved(self, record: JobRecord) -> JobRecord | None:
        """The record with its result back; None when the blob has gone (the job has expired)."""
        if record.result_blob is None:
            return record
        data = self.images.get(record.result_blob)
        if data is None:
            return None
        return replace(record, result=json.loads(data), result_blob=None)
