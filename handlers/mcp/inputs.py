"""An image argument's bytes: base64, a `data:` URL, or a temp-image URL this server issued.

A temp-image URL is read from this server's own store, never fetched: the server makes no
request on an agent's behalf (no SSRF), and the URL's host does not matter (behind a proxy it
is the public one).
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from fastapi.concurrency import run_in_threadpool

from handlers.stores.core import IMAGE_ID, ImageStore
from pipelines.contract.errors import invalid

_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_TEMP_PATH = "/v1/temp-images/"


async def image_bytes(value: str, param: str, store: ImageStore) -> bytes:
    """The bytes `value` stands for, or a 400 naming `param` that says what to send instead."""
    text = value.strip()
    if text.lower().startswith(("http://", "https://")):
        return await _temp_image(text, param, store)
    if text.lower().startswith("data:"):
        match = _DATA_URL.match(text)
        if match is None:
            raise invalid(param, f"The '{param}' data URL must be base64 (`data:image/png;base64,...`).")
        text = text[match.end() :]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(
            param,
            f"The '{param}' argument is not base64, a data URL or a temp-image URL of this server.",
            code="invalid_image",
        ) from None


async def _temp_image(url: str, param: str, store: ImageStore) -> bytes:
    path = urlsplit(url).path
    image_id = path.rsplit(_TEMP_PATH, 1)[1] if _TEMP_PATH in path else ""
    if not IMAGE_ID.match(image_id):
        raise invalid(
            param,
            f"The '{param}' URL is not one of this server's temp images; this server fetches no other "
            "URLs. Send the image as base64 or a data URL.",
            code="invalid_image_url",
        )
    data = await run_in_threadpool(store.get, image_id)
    if data is None:
        raise invalid(
            param,
            f"The '{param}' temp image does not exist or has expired; send the image as base64.",
            code="image_not_found",
        )
    return data
