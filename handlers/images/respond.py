"""Streamed generations and edits: server-sent events in the shape the OpenAI SDKs parse."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from handlers.http_errors import error_body
from handlers.protocol import PromptedRequest, StreamEvent
from pipelines.contract import errors
from pipelines.contract.engine import Engine
from pipelines.contract.errors import APIError
from pipelines.contract.job import ImageEvent, Job

log = logging.getLogger("imagegen")


def _sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


async def stream_response(engine: Engine, job: Job, request: PromptedRequest) -> StreamingResponse:
    """Start the stream once the first event exists, so a failure before any image (an unknown
    model, a failed load) is still a plain HTTP error; later failures become an `error` event,
    which the SDKs raise."""
    prefix = "image_generation" if job.task == "generate" else "image_edit"
    settings = {
        "size": f"{job.output_width}x{job.output_height}",
        "quality": request.quality or "auto",
        "output_format": job.output_format,
        "background": request.background or "auto",
    }

    def encode(event: ImageEvent) -> bytes:
        kind = "partial_image" if event.kind == "partial" else "completed"
        payload = StreamEvent(
            type=f"{prefix}.{kind}",  # type: ignore[arg-type]
            b64_json=base64.b64encode(event.data).decode(),
            created_at=int(time.time()),
            partial_image_index=event.partial_index,
            image_index=event.image_index,
            seed=job.seeds[event.image_index],
            **settings,
        )
        return _sse(payload.model_dump(exclude_none=True))

    events = aiter(engine.stream(job))
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield encode(first)
            async for event in events:
                yield encode(event)
        except APIError as exc:
            yield _sse({"type": "error", **error_body(exc)})
        except Exception:
            log.exception("stream of %s on %s failed", job.task, job.model)
            failed = errors.internal_error("The server had an error while making the image.")
            yield _sse({"type": "error", **error_body(failed)})
        finally:
            # Also when the client has gone: closing the engine's stream stops the remaining steps.
            await events.aclose()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"cache-control": "no-cache"})
