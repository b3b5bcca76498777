"""A job's end, POSTed to its `webhook_url`, signed as the Standard Webhooks spec says.

One message per terminal state (`image.job.completed`, `.failed`, `.cancelled`) whose body is
`{"type", "timestamp", "data": <the job>}`. A failed delivery is tried again with doubling waits,
under the same `webhook-id` (receivers deduplicate on it); each attempt is logged. The URL is
checked again before every attempt, since what a name resolves to can change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from handlers.jobs.ssrf import WebhookGuard
from pipelines.contract.errors import APIError

log = logging.getLogger("imagegen")


class WebhookSender:
    def __init__(
        self, secret: str, guard: WebhookGuard, *, attempts: int, backoff_seconds: float, timeout_seconds: float
    ) -> None:
        self.signer = Webhook(secret)
        self.guard = guard
        self.attempts, self.backoff_seconds, self.timeout_seconds = attempts, backoff_seconds, timeout_seconds

    def longest_seconds(self) -> float:
        """The most one delivery can take: every attempt to its timeout, and the waits between."""
        waits = self.backoff_seconds * (2 ** (self.attempts - 1) - 1)
        return self.attempts * self.timeout_seconds + waits

    def message(self, job: dict[str, Any], sent_at: datetime) -> tuple[str, str, dict[str, str]]:
        """(event type, body, headers) for `job`'s current state."""
        event = f"image.job.{job['status']}"
        message_id = f"msg_{job['id']}_{job['status']}"
        body = json.dumps({"type": event, "timestamp": sent_at.isoformat(), "data": job}, separators=(",", ":"))
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.signer.sign(message_id, sent_at, body),
            "content-type": "application/json",
            "user-agent": "imagegen-webhooks",
        }
        return event, body, headers

    async def deliver(self, job: dict[str, Any]) -> bool:
        """Whether the receiver took it (a 2xx) within the attempts."""
        import httpx  # here, not at the top: with its CLI's rich, a tenth of a second of serve's start

        url = job["webhook_url"]
        async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False, trust_env=False) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    target = await asyncio.to_thread(self.guard.check, url)
                except APIError as refused:
                    log.warning("webhook for job %s not sent: %s", job["id"], refused.message)
                    return False
                event, body, headers = self.message(job, datetime.now(UTC))
                extensions = {"sni_hostname": target.server_name} if target.server_name else {}
                try:
                    response = await client.post(
                        target.connect_url,
                        content=body,
                        headers={**headers, "host": target.host_header},
                        extensions=extensions,
                    )
                    outcome = f"HTTP {response.status_code}"
                    delivered = response.is_success
                except httpx.HTTPError as exc:
                    outcome, delivered = f"{type(exc).__name__}: {exc}", False
                log.info(
                    "webhook %s for job %s, attempt %d of %d: %s",
                    event,
                    job["id"],
                    attempt,
                    self.attempts,
                    outcome,
                    extra={"fields": {"job": job["id"], "attempt": attempt, "delivered": delivered}},
                )
                if delivered:
                    return True
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        log.warning("webhook for job %s gave up after %d attempts", job["id"], self.attempts)
        return False
