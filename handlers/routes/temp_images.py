"""GET /v1/temp-images/{id}: the stored image, to anyone holding its (unguessable) URL."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from handlers.deps import ServicesDep
from handlers.protocol import ErrorResponse
from handlers.stores.core import CONTENT_TYPES, IMAGE_ID
from pipelines.contract.errors import APIError

router = APIRouter()


@router.get(
    "/temp-images/{image_id}",
    tags=["images"],
    response_class=Response,
    responses={200: {"content": {t: {} for t in CONTENT_TYPES.values()}}, 404: {"model": ErrorResponse}},
)
async def get_temp_image(image_id: str, services: ServicesDep) -> Response:
    data = await run_in_threadpool(services.store.get, image_id) if IMAGE_ID.match(image_id) else None
    if data is None:
        raise APIError("not_found", "This image does not exist or its URL has expired.", code="image_not_found")
    return Response(
        data,
        media_type=CONTENT_TYPES[image_id.rsplit(".", 1)[1]],
        headers={"x-content-type-options": "nosniff", "cache-control": "private, max-age=3600"},
    )
