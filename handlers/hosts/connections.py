"""uvicorn's HTTP protocol with the guards it lacks: a deadline for a request's headers, and a cap
on the connections one client address holds open.

uvicorn closes a kept-alive connection that sits idle (`timeout_keep_alive`) and bounds the
size of a request's headers (h11's 16 KB), but waits forever for headers that never finish, or
for a first request that never starts; and any one address may open connections until the
process runs out of file descriptors, at which point /health stops answering too. Each refusal
is OpenAI's error JSON, written straight to the socket (no request was ever handed to the app).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from handlers.http_errors import error_body, http_headers, http_status
from pipelines.contract.errors import APIError

_REASONS = {408: "Request Timeout", 429: "Too Many Requests"}


def headers_too_slow(seconds: float) -> APIError:
    return APIError(
        "too_slow",
        f"The request's headers did not arrive within {seconds:g} s.",
        code="request_timeout",
        retryable=True,
    )


def too_many_connections(limit: int) -> APIError:
    return APIError(
        "rate_limited",
        f"This address already holds {limit} open connections to the server; close some, or reuse them.",
        code="too_many_connections",
        retryable=True,
        retry_after=1.0,
    )


def _raw_response(error: APIError) -> bytes:
    status = http_status(error)
    body = json.dumps(error_body(error)).encode()
    headers = {
        **http_headers(error),
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
    }
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + body


class GuardedH11Protocol(H11Protocol):
    """H11Protocol, and: headers due `header_seconds` after a connection opens or a request's first
    byte; at most `per_client` connections from one address. Subclassed per server (`guarded`)."""

    header_seconds: float = 10.0
    per_client: int = 256
    open_by_client: Counter[str]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._headers_due: asyncio.TimerHandle | None = None
        self.open_by_client[self._address] += 1
        if self.open_by_client[self._address] > self.per_client:
            self._refuse(too_many_connections(self.per_client))
            return
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_by_client[self._address] -= 1
        if self.open_by_client[self._address] <= 0:
            del self.open_by_client[self._address]
        self._headers_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._between_requests():
            self._expect_headers()  # the next request has begun: its headers are due
        else:
            self._headers_arrived()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _expect_headers(self) -> None:
        if self._headers_due is None and not self.transport.is_closing():
            self._headers_due = self.loop.call_later(self.header_seconds, self._headers_late)

    def _headers_arrived(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self._between_requests() and not self.transport.is_closing():
            self._refuse(headers_too_slow(self.header_seconds))

    def _refuse(self, error: APIError) -> None:
        self.transport.write(_raw_response(error))
        self.transport.close()


def guarded(header_seconds: float, per_client: int) -> type[GuardedH11Protocol]:
    """The protocol class for one server, its limits and its count of connections per address."""
    attributes: dict[str, Any] = {
        "header_seconds": header_seconds,
        "per_client": per_client,
        "open_by_client": Counter(),
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)
