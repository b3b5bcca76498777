"""How the server's log reads: plain lines for a terminal, or one JSON object a line for a
collector (IMAGEGEN_LOG_FORMAT). Either way every line carries its request's id."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from handlers.log_text import echo
from handlers.request_id import RequestIdFilter

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "fields"}
_LONGEST_MESSAGE = 10_000
_IN_THE_MESSAGE = ("request_id", "method", "route", "status")  # a request line's message says them


class PlainFormatter(logging.Formatter):
    """`LEVEL logger [request id]: message key=value …`, one line each (a traceback aside): no
    message or field can break the line, whoever's text it carries."""

    def format(self, record: logging.LogRecord) -> str:
        message = echo(record.getMessage(), _LONGEST_MESSAGE)
        line = f"{record.levelname} {record.name} [{getattr(record, 'request_id', '-')}]: {message}"
        fields = getattr(record, "fields", None) or {}
        line += "".join(
            f" {key}={echo(str(value))}"
            for key, value in fields.items()
            if value is not None and key not in _IN_THE_MESSAGE
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update(
            {key: value for key, value in (getattr(record, "fields", None) or {}).items() if value is not None}
        )
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(format: str = "plain", level: int = logging.INFO) -> None:
    """One handler on the root logger (stderr), uvicorn's loggers through it, no access log of
    its own (the request line is ours), the MCP SDK's warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else PlainFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The MCP SDK says at INFO that each stateless request's transport ends: our request line
    # already says the request ended.
    logging.getLogger("mcp").setLevel(max(level, logging.WARNING))
