"""A job as it is kept and as it is shown: one record, written before its 202 and updated as it runs."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.contract.status import JobTrace

# OpenAI's words for background work.
JobStatus = Literal["queued", "in_progress", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
JOB_ID_PREFIX = "imgjob_"


def new_job_id() -> str:
    """128 random bits, URL-safe: an id tells nothing and cannot be guessed."""
    return JOB_ID_PREFIX + secrets.token_urlsafe(16)


@dataclass
class JobRecord:
    """What is stored of one job. `payload` is the resolved work (the Job and how to answer it),
    kept only until the job ends; `result` the synchronous body, kept until `expires_at` (a large
    one apart from the record, in the image store: `result_blob` names it there, see results.py).
    `webhook_owed`: its end is still to be POSTed to `webhook_url` (see outbox.py); set by the
    same write that makes it terminal."""

    id: str
    owner: str  # a digest of the API key that made it, never the key
    endpoint: str  # generations | edits | variations
    model: str
    steps: int
    images: int
    status: JobStatus = "queued"
    created_at: int = field(default_factory=lambda: int(time.time()))
    started_at: int | None = None
    finished_at: int | None = None
    expires_at: int | None = None  # set when it ends: with its images
    step: int = 0
    images_done: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    webhook_url: str | None = None
    webhook_owed: bool = False
    result_blob: str | None = None
    payload: bytes | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at


def observe(record: JobRecord, trace: JobTrace) -> bool:
    """Copy what the engine says of the running job onto its record; whether anything changed."""
    changed = False
    if trace.queue_seconds is not None and record.status == "queued":  # the engine has started it
        record.status, record.started_at, changed = "in_progress", int(time.time()), True
    step = min(trace.steps_done, record.steps)
    if step != record.step:
        record.step, changed = step, True
    return changed


def end(record: JobRecord, status: JobStatus, ttl_seconds: int, **fields: Any) -> None:
    """The job ends now; its record is kept as long as its images are, and its webhook is owed."""
    now = int(time.time())
    record.status, record.finished_at, record.expires_at = status, now, now + ttl_seconds
    record.webhook_owed = record.webhook_url is not None
    if status == "completed":
        record.step, record.images_done = record.steps, record.images
    for name, value in fields.items():
        setattr(record, name, value)


def job_body(record: JobRecord) -> dict[str, Any]:
    """The job as the API shows it (`object: image.job`)."""
    body: dict[str, Any] = {
        "id": record.id,
        "object": "image.job",
        "status": record.status,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "expires_at": record.expires_at,
        "endpoint": f"/v1/images/{record.endpoint}",
        "model": record.model,
        "progress": {
            "step": record.step,
            "steps": record.steps,
            "images_done": record.images_done,
            "images": record.images,
        },
    }
    if record.webhook_url is not None:
        body["webhook_url"] = record.webhook_url
    if record.status == "completed":
        body["result"] = record.result
    if record.error is not None:
        body["error"] = record.error
    return body
