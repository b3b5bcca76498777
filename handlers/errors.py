"""One error type, and the one place that turns every failure into OpenAI's error JSON."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("imagegen")

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    """An error the client sees: an HTTP status and OpenAI's {message, type, param, code}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = dict(headers or {})
        # The SDK retries 5xx twice unless told not to; a retry of a failed generation only
        # repeats a long job, so say whether one can help.
        if retryable is not None:
            self.headers["x-should-retry"] = "true" if retryable else "false"

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses the Modal boundary pickled; the default would call APIError(message) only.
        # The headers already hold x-should-retry, so `retryable` need not travel.
        return _rebuild, (self.status, self.message, self.param, self.code, self.type, self.headers)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _rebuild(status: int, message: str, param: str | None, code: str | None, type: str,
             headers: dict[str, str]) -> APIError:
    return APIError(status, message, param=param, code=code, type=type, headers=headers)


def invalid(param: str | None, message: str, code: str | None = "invalid_value") -> APIError:
    """A 400 naming the offending field."""
    return APIError(400, message, param=param, code=code)


def from_validation(errors: list[Any]) -> APIError:
    """The first pydantic error, as a 400 whose `param` is the field it concerns."""
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form")]
    param = loc[0] if loc else None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return APIError(400, "We could not parse the JSON body of your request: it is not valid JSON.", code="invalid_json")
    if kind == "missing":
        if param is None:
            return APIError(400, "The request body is missing or not a JSON object.", code="invalid_request")
        return invalid(param, f"Missing required parameter: '{param}'.", code="missing_required_parameter")
    message = first.get("msg", "Invalid value")
    if param is None and kind in ("model_type", "dict_type", "model_attributes_type"):
        return APIError(400, "The request body must be a JSON object.", code="invalid_request")
    if param is None:
        return APIError(400, f"Invalid request body: {message}.", code="invalid_request")
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


def install_error_handlers(app: FastAPI) -> None:
    """Register every failure path once, so nothing leaves as FastAPI's `{"detail": …}`."""
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]

    @app.exception_handler(APIError)
    async def on_api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return from_validation(list(exc.errors())).response()

    @app.exception_handler(ValidationError)
    async def on_validation(_: Request, exc: ValidationError) -> JSONResponse:
        return from_validation(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.url.path}."
            code = "unknown_url"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
            code = "method_not_allowed"
        else:
            message, code = str(exc.detail), None
        return APIError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(
            500,
            "The server had an error while processing your request.",
            code="internal_error",
            retryable=False,
        ).response()
