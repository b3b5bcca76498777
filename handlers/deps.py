"""What routes depend on, as `Annotated` aliases; the app factory puts them on app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from handlers.jobs.runner import JobRunner
from handlers.jobs.webhooks import WebhookSender
from handlers.provenance.credentials import ContentCredentials
from handlers.settings import ServerSettings
from handlers.stores.core import ImageStore
from pipelines.contract.engine import Engine
from pipelines.contract.served import ServedModels


@dataclass(frozen=True)
class Services:
    settings: ServerSettings
    engine: Engine
    store: ImageStore
    served: ServedModels
    metrics: CollectorRegistry
    jobs: JobRunner
    credentials: ContentCredentials | None = None  # None: IMAGEGEN_C2PA=off
    webhooks: WebhookSender | None = None  # None: IMAGEGEN_WEBHOOK_SECRET is not set


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
