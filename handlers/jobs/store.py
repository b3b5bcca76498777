"""Where job records live: a small protocol, and the embedded default (SQLite beside the images).

Every front that serves the API must see the same records (on Modal several containers do), so
the runner and the routes only ever talk to a `JobStore`; `handlers/hosts/modal/job_store.py` is
the one on a `modal.Dict`.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from handlers.jobs.records import TERMINAL, JobRecord

_FIELDS = [f.name for f in dataclasses.fields(JobRecord) if f.name != "payload"]


def record_json(record: JobRecord) -> str:
    """Everything but the payload, as JSON (the payload is bytes, kept apart)."""
    return json.dumps({name: getattr(record, name) for name in _FIELDS}, separators=(",", ":"))


def record_from(text: str, payload: bytes | None) -> JobRecord:
    return JobRecord(**json.loads(text), payload=payload)


class JobStore(Protocol):
    """Job records by id. `put` is durable when it returns: a 202 is sent only after it."""

    def put(self, record: JobRecord) -> None: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def recent(self, owner: str, limit: int) -> list[JobRecord]:
        """The owner's jobs, newest first."""
        ...

    def unfinished(self, owner: str | None = None) -> list[JobRecord]:
        """Jobs not yet terminal (the owner's, or everyone's), oldest first."""
        ...

    def sweep(self, now: float | None = None) -> int:
        """Remove records past their expiry; how many went."""
        ...

    def ask_cancel(self, job_id: str) -> None:
        """Mark the job to be cancelled, apart from its record (which the front running it
        rewrites as it goes), so that front sees it whatever it writes meanwhile."""
        ...

    def cancel_asked(self, job_id: str) -> bool: ...

    # The webhook outbox (outbox.py): a terminal record with `webhook_owed` is owed until settled.

    def owed(self) -> list[JobRecord]:
        """Terminal jobs whose webhook is owed and not yet settled (claimed or not), oldest first."""
        ...

    def claim_webhook(self, job_id: str, until: float, take_over: bool = False) -> bool:
        """Take the sending of an owed webhook until `until` (a time): False when it is settled, or
        claimed by another sender whose claim has not lapsed (unless `take_over`)."""
        ...

    def release_webhook(self, job_id: str) -> None:
        """Give a claim up, the webhook still owed (a sender stopping before it was done)."""
        ...

    def settle_webhook(self, job_id: str) -> None:
        """The webhook is owed no more: delivered, or given up after every attempt."""
        ...

    # Leases (leases.py): which front runs an unfinished job.

    def hold(self, job_id: str, holder: str, seconds: float) -> bool:
        """Take the job's lease for `holder` for `seconds` from now, or renew it: True if `holder`
        holds it now. Atomic: of fronts taking one job at once, one gets it; False while another
        holder's lease is live (0 seconds lets it go at once)."""
        ...

    def holder(self, job_id: str) -> str | None:
        """Who holds a live lease on the job; None when nobody does (its front is gone)."""
        ...


class SQLiteJobStore:
    """One SQLite file. WAL with `synchronous=NORMAL`: a commit survives the process being killed
    (kill -9); only a power cut can lose the last few. Safe from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                done INTEGER NOT NULL,
                expires_at INTEGER,
                record TEXT NOT NULL,
                payload BLOB
            );
            CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at);
            CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (done, created_at);
            CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expires_at);
            CREATE TABLE IF NOT EXISTS cancels (id TEXT PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS webhooks (
                id TEXT PRIMARY KEY,
                settled INTEGER NOT NULL DEFAULT 0,
                claimed_until REAL NOT NULL DEFAULT 0
            );
            CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
            """
        )

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [record_from(text, payload) for text, payload in rows]

    def put(self, record: JobRecord) -> None:
        # A finished job's payload (its input images, for one) is dropped: only the result is kept.
        payload = None if record.status in TERMINAL else record.payload
        row = (record.id, record.owner, record.created_at, int(record.done), record.expires_at, record_json(record))
        with self._lock, self._db:  # one transaction: the terminal state and its owed webhook together
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)", (*row, payload))
            if record.done and record.webhook_owed:  # a later write of the same end leaves it as it is
                self._db.execute("INSERT OR IGNORE INTO webhooks (id) VALUES (?)", (record.id,))

    def get(self, job_id: str) -> JobRecord | None:
        found = self._rows("SELECT record, payload FROM jobs WHERE id = ?", (job_id,))
        return found[0] if found else None

    def recent(self, owner: str, limit: int) -> list[JobRecord]:
        return self._rows(
            "SELECT record, NULL FROM jobs WHERE owner = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (owner, limit),
        )

    def unfinished(self, owner: str | None = None) -> list[JobRecord]:
        if owner is None:
            return self._rows("SELECT record, payload FROM jobs WHERE done = 0 ORDER BY created_at, rowid", ())
        return self._rows(
            "SELECT record, payload FROM jobs WHERE done = 0 AND owner = ? ORDER BY created_at, rowid", (owner,)
        )

    def sweep(self, now: float | None = None) -> int:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (int(time.time() if now is None else now),),
            )
            for table in ("cancels", "leases"):
                self._db.execute(f"DELETE FROM {table} WHERE id NOT IN (SELECT id FROM jobs WHERE done = 0)")
            self._db.execute("DELETE FROM webhooks WHERE id NOT IN (SELECT id FROM jobs)")
        return cursor.rowcount

    def ask_cancel(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO cancels VALUES (?)", (job_id,))

    def cancel_asked(self, job_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM cancels WHERE id = ?", (job_id,)).fetchone() is not None

    def owed(self) -> list[JobRecord]:
        return self._rows(
            "SELECT record, NULL FROM jobs JOIN webhooks USING (id) WHERE settled = 0 ORDER BY created_at, jobs.rowid",
            (),
        )

    def claim_webhook(self, job_id: str, until: float, take_over: bool = False) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE webhooks SET claimed_until = ? WHERE id = ? AND settled = 0 AND (claimed_until <= ? OR ?)",
                (until, job_id, time.time(), take_over),
            )
        return cursor.rowcount == 1

    def release_webhook(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE webhooks SET claimed_until = 0 WHERE id = ?", (job_id,))

    def settle_webhook(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE webhooks SET settled = 1 WHERE id = ?", (job_id,))

    def hold(self, job_id: str, holder: str, seconds: float) -> bool:
        now = time.time()
        with self._lock:  # one statement: taken (or renewed) only if free, lapsed or already ours
            cursor = self._db.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.holder = excluded.holder OR leases.until <= ?",
                (job_id, holder, now + seconds, now),
            )
        return cursor.rowcount == 1

    def holder(self, job_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT holder FROM leases WHERE id = ? AND until > ?", (job_id, time.time())
            ).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
