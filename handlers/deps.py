"""What routes depend on, as `Annotated` aliases; the app factory puts them on app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from handlers.engine import Engine
from handlers.settings import Settings
from handlers.store import ImageStore
from pipelines.catalog import ServedModels


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    store: ImageStore
    served: ServedModels


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
