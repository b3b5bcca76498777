"""Request body limits, enforced as the bytes arrive: nothing past a limit is read, let alone kept,
and a body that arrives too slowly is not waited for."""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.http_errors import error_response
from pipelines.contract.errors import APIError, invalid

MB = 1024 * 1024


def _megabytes(size: int) -> str:
    return f"{size / MB:.0f} MB" if size % MB == 0 else f"{size / MB:.1f} MB"


def body_too_large(size: int | None, limit: int, *, json: bool = False) -> APIError:
    said = "" if size is None else f" ({_megabytes(size)})"
    # A JSON body carries no images (they go in multipart uploads), so its limit is far smaller.
    what = "A JSON request body" if json else "The request body"
    return APIError(
        "too_large", f"{what} is too large{said}; the limit is {_megabytes(limit)}.", code="request_too_large"
    )


def body_too_slow(received: int, rate: int) -> APIError:
    return APIError(
        "too_slow",
        f"The request body arrived too slowly ({received:,} bytes so far); send it at {rate:,} bytes a second or "
        "faster.",
        code="request_timeout",
        retryable=True,
    )


@dataclass(frozen=True)
class BodyPace:
    """How slowly a body may arrive: after `grace_seconds`, `min_bytes_per_second` on average."""

    grace_seconds: float
    min_bytes_per_second: int

    def due(self, started: float, received: int) -> float:
        """When (loop time) the next bytes must have arrived by."""
        return started + self.grace_seconds + received / self.min_bytes_per_second


def file_too_large(field: str, limit: int) -> APIError:
    return APIError(
        "too_large",
        f"The '{field}' file is larger than the {_megabytes(limit)} limit.",
        param=field,
        code="file_too_large",
    )


def not_utf8(field: str) -> APIError:
    return invalid(field, f"The '{field}' field is not valid UTF-8 text.", code="invalid_encoding")


class _FileSizes:
    """Follows a multipart body as it streams past and raises once one part passes the limit, or
    a text part is not UTF-8 (the form parser would read it as Latin-1 and carry on, where the
    same bytes in JSON are a 400)."""

    def __init__(self, boundary: bytes, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self._header_name = b""
        self._header_value = b""
        self._field = ""
        self._size = 0
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )
        self._broken = False
        self._text: codecs.IncrementalDecoder | None = None

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return
        try:
            self._parser.write(chunk)
        except APIError:
            raise
        except Exception:  # malformed multipart: the form parser will say so; the body limit still holds
            self._broken = True

    def _on_part_begin(self) -> None:
        self._field, self._size = "", 0
        self._text = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            # The SDKs send a list of images as `image[]`; the field is `image` all the same.
            self._field = options.get(b"name", b"").decode("utf-8", "replace").removesuffix("[]")
            if b"filename" not in options:
                self._text = codecs.getincrementaldecoder("utf-8")()
        self._header_name = self._header_value = b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._size > self.max_file_bytes:
            raise file_too_large(self._field or "file", self.max_file_bytes)
        self._decode(data[start:end])

    def _on_part_end(self) -> None:
        self._decode(b"", final=True)

    def _decode(self, data: bytes, final: bool = False) -> None:
        if self._text is None:
            return
        try:
            self._text.decode(data, final)
        except UnicodeDecodeError:
            raise not_utf8(self._field or "field") from None


class BodyLimit:
    """ASGI middleware: a 413 in OpenAI's shape for a body, or one uploaded file, past its limit,
    and a 408 for a body that arrives slower than `pace` allows.

    A declared Content-Length past the limit is refused before a byte of the body is read.
    Otherwise the bytes are counted as they arrive (a chunked upload declares no length), and
    each part of a multipart body is counted on its own, so the error names the field. A body
    that is not multipart is JSON (or a form of text fields) and held to `max_json_bytes`. Once
    a limit is passed the app's own answer (the form parser's error, say) is replaced by ours.
    The JSON of `image_json_paths` carries images (MCP's tool arguments hold base64 images), so
    it is held to the whole-body limit instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_file_bytes: int,
        max_body_bytes: int,
        max_json_bytes: int,
        pace: BodyPace,
        image_json_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.image_json_paths = image_json_paths
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.pace = pace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, content_type = _headers(scope)
        files = self._file_sizes(content_type)
        json = files is None and scope["path"] not in self.image_json_paths
        limit = min(self.max_body_bytes, self.max_json_bytes) if json else self.max_body_bytes
        if declared is not None and declared > limit:
            await error_response(body_too_large(declared, limit, json=json))(scope, receive, send)
            return

        loop = asyncio.get_running_loop()
        began = loop.time()
        received = 0
        body_done = False
        refused: APIError | None = None
        started = False

        async def paced_receive() -> Message:
            nonlocal refused
            if body_done:  # after the body, receive() waits for the client to leave: no bound
                return await receive()
            try:
                async with asyncio.timeout_at(self.pace.due(began, received)):
                    return await receive()
            except TimeoutError:
                refused = body_too_slow(received, self.pace.min_bytes_per_second)
                raise refused from None

        async def limited_receive() -> Message:
            nonlocal received, refused, body_done
            if refused is not None:
                raise refused
            message = await paced_receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                body_done = not message.get("more_body", False)
                try:
                    if received > limit:
                        raise body_too_large(None, limit, json=json)
                    if files is not None:
                        files.feed(chunk)
                except APIError as error:
                    refused = error
                    raise
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:  # the app's answer to a body we stopped reading
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if refused is None or started:
                raise
        if refused is not None and not started:
            response = error_response(refused)
            if refused.kind == "too_slow":  # what is left of its body is not worth reading
                response.headers["connection"] = "close"
            await response(scope, receive, send)

    def _file_sizes(self, content_type: str) -> _FileSizes | None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            return None
        try:
            return _FileSizes(boundary, self.max_file_bytes)
        except Exception:  # an unusable boundary: the form parser refuses the request itself
            return None


def _headers(scope: Scope) -> tuple[int | None, str]:
    declared: int | None = None
    content_type = ""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
        elif name == b"content-type":
            content_type = value.decode("latin-1")
    return declared, content_type
