"""The one place that turns every failure into an HTTP status and OpenAI's error JSON."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from handlers.log_text import echo
from handlers.request_id import request_id
from handlers.request_log import note_error
from pipelines.contract import errors
from pipelines.contract.errors import APIError, ErrorKind, invalid

log = logging.getLogger("imagegen")

# Each kind of error: its status, and the `type` OpenAI's error JSON gives it.
STATUS: dict[ErrorKind, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "unauthenticated": (401, "invalid_request_error"),
    "not_found": (404, "invalid_request_error"),
    "method_not_allowed": (405, "invalid_request_error"),
    "too_large": (413, "invalid_request_error"),
    "too_slow": (408, "invalid_request_error"),
    "rate_limited": (429, "rate_limit_error"),
    # nginx's "client closed request": logged, never seen by the client.
    "client_gone": (499, "invalid_request_error"),
    "internal": (500, "server_error"),
    "unavailable": (503, "server_error"),
    "timeout": (504, "server_error"),
}


def http_status(error: APIError) -> int:
    return STATUS[error.kind][0]


def http_headers(error: APIError) -> dict[str, str]:
    headers = {}
    if error.kind == "unauthenticated":
        headers["www-authenticate"] = "Bearer"
    if error.retry_after is not None:
        # Whole seconds, as HTTP has it; the OpenAI SDKs read the exact wait from retry-after-ms.
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
        headers["retry-after-ms"] = str(max(1, round(error.retry_after * 1000)))
    # The SDKs retry 408, 409, 429 and 5xx unless told not to.
    if error.retryable is not None:
        headers["x-should-retry"] = "true" if error.retryable else "false"
    return headers


def error_body(error: APIError) -> dict[str, Any]:
    """OpenAI's error object, plus the request's id (clients ignore fields they do not know)."""
    body = {"message": error.message, "type": STATUS[error.kind][1], "param": error.param, "code": error.code}
    if (identifier := request_id()) is not None:
        body["request_id"] = identifier
    return {"error": body}


def error_response(error: APIError) -> JSONResponse:
    note_error(error.code)
    return JSONResponse(error_body(error), status_code=http_status(error), headers=http_headers(error))


def from_validation(problems: list[Any]) -> APIError:
    """The first pydantic error, as a bad request whose `param` is the field it concerns."""
    first = problems[0] if problems else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form")]
    param = loc[0] if loc else None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return invalid(
            None, "We could not parse the JSON body of your request: it is not valid JSON.", code="invalid_json"
        )
    if kind == "missing":
        if param is None:
            return invalid(None, "The request body is missing or not a JSON object.", code="invalid_request")
        return invalid(param, f"Missing required parameter: '{param}'.", code="missing_required_parameter")
    # pydantic prefixes our validators' messages with their exception's name; the caller needs the reason.
    message = first.get("msg", "Invalid value").removeprefix("Value error, ")
    if param is None and kind in ("model_type", "dict_type", "model_attributes_type"):
        return invalid(None, "The request body must be a JSON object.", code="invalid_request")
    if param is None:
        return invalid(None, f"Invalid request body: {message}.", code="invalid_request")
    return invalid(param, f"Invalid value for '{param}': {message}.")


def _openapi_without_422(app: FastAPI) -> Any:
    """FastAPI documents a 422 on every route that validates; here validation is a 400."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _from_starlette(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method, a form it cannot parse)."""
    if exc.status_code == 404:
        error = APIError(
            "not_found", f"Unknown request URL: {request.method} {echo(request.url.path)}.", code="unknown_url"
        )
    elif exc.status_code == 405:
        error = APIError(
            "method_not_allowed",
            f"Method {request.method} is not allowed on {echo(request.url.path)}.",
            code="method_not_allowed",
        )
    else:
        body = {
            "error": {
                "message": str(exc.detail),
                "type": "invalid_request_error" if exc.status_code < 500 else "server_error",
                "param": None,
                # Never null: clients switch on the code.
                "code": "invalid_request" if exc.status_code < 500 else "server_error",
                "request_id": request_id(),
            }
        }
        return JSONResponse(body, status_code=exc.status_code, headers=dict(exc.headers or {}))
    return JSONResponse(
        error_body(error), status_code=http_status(error), headers={**http_headers(error), **dict(exc.headers or {})}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register every failure path once, so nothing leaves as FastAPI's `{"detail": …}`."""
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]

    @app.exception_handler(APIError)
    async def on_api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(from_validation(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def on_validation(_: Request, exc: ValidationError) -> JSONResponse:
        return error_response(from_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _from_starlette(request, exc)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(errors.internal_error())
