"""The one error type, and every error that more than one place raises, built once.

An `APIError` says what went wrong in the domain's terms (its `kind`), not in HTTP's: the web
side maps kinds to status codes in one table (`handlers/http_errors.py`). It is a plain,
picklable exception, so a GPU container on Modal can raise it and the web front re-raise it.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal[
    "invalid_request",  # the caller's input is wrong; `param` names the field
    "unauthenticated",  # no key, or a wrong one
    "not_found",  # no such model, image or URL
    "method_not_allowed",
    "too_large",  # a body or file past its limit
    "too_slow",  # the caller sent its request too slowly, or stopped sending it
    "rate_limited",  # a queue is full: come back shortly
    "client_gone",  # the caller hung up or cancelled; nobody hears the answer
    "internal",  # our fault; a retry would repeat it
    "unavailable",  # a passing condition (busy, loading, out of memory, storage): retry
    "timeout",  # the work itself ran past its limit
]


class APIError(Exception):
    """An error the caller sees: a kind, OpenAI's {message, param, code}, and retry advice."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
        # The SDKs retry 5xx unless told not to; a retry of a failed generation only repeats a
        # long job, so each error says whether one can help (None: the client's default).
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses the Modal boundary pickled; the default would call APIError(message) only.
        return _rebuild, (self.kind, self.message, self.param, self.code, self.retryable, self.retry_after)

    def __repr__(self) -> str:
        return f"APIError({self.kind!r}, {self.message!r}, param={self.param!r}, code={self.code!r})"


def _rebuild(
    kind: ErrorKind,
    message: str,
    param: str | None,
    code: str | None,
    retryable: bool | None,
    retry_after: float | None,
) -> APIError:
    return APIError(kind, message, param=param, code=code, retryable=retryable, retry_after=retry_after)


# --- the caller's mistakes ------------------------------------------------------------------


def invalid(param: str | None, message: str, code: str | None = "invalid_value") -> APIError:
    """A bad request naming the offending field."""
    return APIError("invalid_request", message, param=param, code=code)


def model_not_found(name: str | None, available: list[str] | None = None) -> APIError:
    listed = f" Available: {', '.join(available)}." if available else ""
    return APIError(
        "not_found",
        f"The model '{name}' does not exist or is not served here.{listed}",
        param="model",
        code="model_not_found",
    )


# --- the load on a model ----------------------------------------------------------------------


def queue_full(model: str, waiting: int, retry_after: float) -> APIError:
    return APIError(
        "rate_limited",
        f"Model {model} is busy: {waiting} requests are already waiting. Retry shortly.",
        code="queue_full",
        retryable=True,
        retry_after=retry_after,
    )


def model_loading(model: str, waiting: int, retry_after: float) -> APIError:
    return APIError(
        "unavailable",
        f"Model {model} is loading and {waiting} requests are waiting for it; retry shortly.",
        code="model_loading",
        retryable=True,
        retry_after=retry_after,
    )


def queue_timeout(model: str, seconds: float) -> APIError:
    return APIError(
        "unavailable",
        f"Model {model} was too busy to start this request within {seconds:g} s; retry later.",
        code="queue_timeout",
        retryable=True,
        retry_after=10,
    )


def model_busy(model: str, seconds: float, retry_after: int, hint: str = "") -> APIError:
    """No answer from a remote GPU pool in time: mostly a cold start or a saturated pool. `hint`
    says where work longer than a request can go."""
    return APIError(
        "unavailable",
        f"Model {model} did not answer within {seconds:.0f} s: its GPUs are starting or busy. Try again shortly."
        + (f" {hint}" if hint else ""),
        code="model_busy",
        retryable=True,
        retry_after=retry_after,
    )


def backend_unavailable(model: str, retry_after: int) -> APIError:
    return APIError(
        "unavailable",
        f"The GPU pool for {model} is unavailable right now. Try again shortly.",
        code="backend_unavailable",
        retryable=True,
        retry_after=retry_after,
    )


def out_of_memory(model: str) -> APIError:
    """Out of device memory is the load's fault, not the request's: worth a retry."""
    return APIError(
        "unavailable",
        f"Model {model} ran out of device memory for this request; retry, or ask for fewer or smaller images.",
        code="out_of_memory",
        retryable=True,
        retry_after=5,
    )


def shutting_down() -> APIError:
    return APIError("unavailable", "The server is shutting down.", code="shutting_down", retryable=True, retry_after=5)


def storage_unavailable(reason: str, *, reading: bool = False) -> APIError:
    """The image store cannot be used now (b64_json needs no storage at all)."""
    if reading:
        message = f"The server could not read the image ({reason}). Try again later."
    else:
        message = (
            f"The server could not store the image ({reason}). Try again later, or ask for "
            "response_format=b64_json to get the image without a URL."
        )
    return APIError("unavailable", message, code="storage_unavailable", retryable=True, retry_after=2)


def storage_full(max_bytes: int, retry_after: float) -> APIError:
    """A new image does not fit the store's quota: the ones there keep their URLs until they expire."""
    return APIError(
        "unavailable",
        f"The server's image storage is full ({max_bytes / 2**20:,.0f} MB of images whose "
        "URLs are still live). Retry when older ones expire, or ask for response_format=b64_json to get "
        "the image without a URL.",
        code="storage_full",
        retryable=True,
        retry_after=retry_after,
    )


# --- failures -------------------------------------------------------------------------------


def generation_failed(model: str, see: str = "the server log") -> APIError:
    return APIError(
        "internal",
        f"Model {model} failed while making the image; see {see}.",
        code="generation_failed",
        retryable=False,
    )


def generation_timeout(model: str) -> APIError:
    return APIError(
        "timeout",
        f"Model {model} ran past its time limit while making the image.",
        code="generation_timeout",
        retryable=False,
    )  # the same job would hit the same limit


def model_load_failed(model: str, reason: str) -> APIError:
    return APIError(
        "internal", f"Model {model} could not be loaded: {reason[:300]}", code="model_load_failed", retryable=False
    )


def model_unavailable(model: str, message: str) -> APIError:
    """The model cannot run here until its operator acts (its weights are absent): retrying won't help."""
    return APIError("unavailable", message, param="model", code="model_unavailable", retryable=False)


def internal_error(message: str = "The server had an error while processing your request.") -> APIError:
    return APIError("internal", message, code="internal_error", retryable=False)


def cancelled() -> APIError:
    return APIError("client_gone", "The request was cancelled.", code="cancelled")


def client_closed() -> APIError:
    return APIError("client_gone", "The client closed the request.", code="client_closed_request")
