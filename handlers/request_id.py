"""The request being answered, so every log line said while answering it carries its id.

Apart from handlers/request_log.py (the middleware, with starlette and the metrics) so that
configuring the log, which every `imagegen` command does, imports neither.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.request_log import RequestRecord

current_request: ContextVar[RequestRecord | None] = ContextVar("imagegen_request", default=None)


def request_id() -> str | None:
    record = current_request.get()
    return None if record is None else record.id


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() or "-"
        return True
