"""GET /v1/models and /v1/models/{id}: OpenAI's list shape plus each model's capabilities."""

from __future__ import annotations

from fastapi import APIRouter, Query

from handlers.deps import Services, ServicesDep
from handlers.images.sizes import format_size
from handlers.protocol import ErrorResponse, Model, ModelCapabilities, ModelList, ModelLora
from pipelines.contract import errors
from pipelines.contract.catalog import ModelSpec

router = APIRouter(tags=["models"], responses={401: {"model": ErrorResponse}})


def describe(spec: ModelSpec, services: Services) -> Model:
    status = services.engine.status().get(spec.id)
    return Model(
        id=spec.id,
        created=spec.created,
        owned_by=spec.owned_by,
        description=spec.description,
        state=status.state if status else "not_loaded",
        aliases=services.served.aliases_of(spec.id),
        capabilities=ModelCapabilities(
            tasks=list(spec.tasks),
            sizes=[format_size(size) for size in spec.sizes],
            default_size=format_size(spec.default_size),
            min_side=spec.min_side,
            max_side=spec.max_side,
            size_multiple=spec.multiple,
            max_n=spec.max_n,
            family=spec.family,
            negative_prompt=spec.negative_prompt,
            max_input_images=spec.max_input_images,
            edits="instruction" if spec.instruction_edits else "image_to_image",
        ),
        loras=[
            ModelLora(name=lora.name, family=lora.family, model=lora.model)
            for lora in services.served.loras.offered(spec)
        ],
    )


@router.get("/models", response_model=ModelList)
async def list_models(
    services: ServicesDep,
    type: str | None = Query(None, description="Only models of this type (all here are `image_generation`)."),
) -> ModelList:
    if type is not None and type != "image_generation":
        return ModelList(data=[])
    return ModelList(data=[describe(spec, services) for spec in services.served.specs])


@router.get("/models/{model_id:path}", response_model=Model, responses={404: {"model": ErrorResponse}})
async def retrieve_model(model_id: str, services: ServicesDep) -> Model:
    """A served model by id or alias (an alias answers with the model it stands for)."""
    spec = services.served.get(model_id)
    if spec is None:
        raise errors.model_not_found(model_id)
    return describe(spec, services)
