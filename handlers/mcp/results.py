"""What a tool answers: image content blocks plus a short text an agent can quote, or a tool error
carrying OpenAI's error object (message, type, param, code), never a stack trace."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent

from handlers.http_errors import error_body
from handlers.request_log import note_error
from handlers.stores.core import CONTENT_TYPES
from pipelines.contract.errors import APIError
from pipelines.contract.job import Job
from pipelines.contract.usage import Usage


def images_result(
    images: list[bytes], job: Job, urls: list[str | None], ttl_seconds: int, usage: Usage
) -> CallToolResult:
    """One image block per image (base64, its MIME type), then one text block saying how each was made."""
    size = f"{job.output_width}x{job.output_height}"
    mime = CONTENT_TYPES[job.output_format]
    made = "Edited" if job.task == "edit" else "Made"
    lines = [
        f"{made} {len(images)} image{'s' if len(images) > 1 else ''} with {job.model}: {size}, {job.output_format}."
    ]
    described: list[dict[str, Any]] = []
    for index, (seed, url) in enumerate(zip(job.seeds, urls, strict=True)):
        where = f" URL (for {ttl_seconds // 60} minutes): {url}" if url else ""
        lines.append(f"Image {index + 1}: seed {seed}.{where}")
        described.append({"seed": seed, "url": url})
    content: list[ContentBlock] = [
        ImageContent(data=base64.b64encode(image).decode(), mime_type=mime) for image in images
    ]
    content.append(TextContent(text="\n".join(lines)))
    return CallToolResult(
        content=content,
        structured_content={
            "model": job.model,
            "size": size,
            "output_format": job.output_format,
            "images": described,
            "usage": usage.openai(),
        },
    )


def json_result(value: dict[str, Any]) -> CallToolResult:
    """A plain answer: its JSON as text (what every client shows) and as structured content."""
    return CallToolResult(content=[TextContent(text=json.dumps(value))], structured_content=value)


def error_result(error: APIError) -> CallToolResult:
    """The error as the HTTP API would send it, so the agent reads the same message and `param`."""
    note_error(error.code)
    body = error_body(error)
    param = f" (param: {error.param})" if error.param else ""
    return CallToolResult(
        content=[TextContent(text=f"{error.message}{param}\n{json.dumps(body)}")],
        structured_content=body,
        is_error=True,
    )
