"""Every request gets an id, and leaves one log line and its metrics when it is answered.

The id is the caller's own `x-request-id` when it sends a usable one, else a new one; it comes
back as `x-request-id`, in error bodies, and in every log line written while the request is
handled. The line says what was asked (route, model, task, size, n, steps, seed), what it cost
(queue wait, run time, total), and how it ended (status, error code, bytes out).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.log_text import echo
from handlers.metrics import Telemetry
from handlers.request_id import current_request
from handlers.route_names import RouteNames
from pipelines.contract.job import Job
from pipelines.contract.status import JobTrace, current_trace

log = logging.getLogger("imagegen.request")
_USABLE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}\Z")
_PROBES = ("/health", "/health/ready", "/metrics")


@dataclass
class RequestRecord:
    id: str
    method: str
    route: str
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    error_code: str | None = None
    bytes_out: int = 0
    job: Job | None = None
    trace: JobTrace = field(default_factory=JobTrace)

    def fields(self) -> dict[str, object]:
        """The log line's fields, in order; None where the request never got that far."""
        job, trace = self.job, self.trace
        return {
            "request_id": self.id,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "model": job.model if job else None,
            "task": job.task if job else None,
            "size": f"{job.output_width}x{job.output_height}" if job else None,
            "n": job.n if job else None,
            "steps": job.steps if job else None,
            "seed": job.seeds[0] if job else None,
            "queue_s": _seconds(trace.queue_seconds),
            "run_s": _seconds(trace.run_seconds),
            "batch_images": trace.batch_images,
            "total_s": _seconds(time.monotonic() - self.started),
            "bytes_out": self.bytes_out,
            "error": self.error_code,
        }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def note_job(job: Job) -> None:
    """The route resolved its request into `job`: the log line and metrics say so."""
    if (record := current_request.get()) is not None:
        record.job = job


def note_error(code: str | None) -> None:
    if (record := current_request.get()) is not None:
        record.error_code = code


class RequestLog:
    """ASGI middleware, outermost: the id, the line, the metrics."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry, routes: RouteNames) -> None:
        self.app = app
        self.telemetry = telemetry
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(
            id=_incoming_id(scope) or f"req_{secrets.token_hex(12)}",
            method=echo(scope["method"], 16),
            route=echo(scope["path"]),
        )
        request_token, trace_token = current_request.set(record), current_trace.set(record.trace)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", record.id.encode("latin-1"))],
                }
            elif message["type"] == "http.response.body":
                record.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(request_token)
            current_trace.reset(trace_token)
            self._done(record, scope)

    def _done(self, record: RequestRecord, scope: Scope) -> None:
        fields = record.fields()
        if record.status is None:
            fields["status"] = 499  # the client left before any answer
        level = logging.WARNING if (record.status or 500) >= 500 else logging.INFO
        if record.route in _PROBES and level == logging.INFO:
            level = logging.DEBUG  # a load balancer's probe every few seconds is not news
        # The id is a field here, not the filter's: this line is written after the request's context ended.
        log.log(
            level,
            "%s %s %s",
            record.method,
            record.route,
            fields["status"],
            extra={"fields": fields, "request_id": record.id},
        )
        if record.route not in _PROBES:
            self.telemetry.observe(self.routes.template(scope), fields)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _USABLE_ID.match(text) else None
    return None
