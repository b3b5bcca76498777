"""The web front on Modal: the same app factory as `imagegen serve`, around a ModalEngine (jobs go
to the GPU pools) and a Volume-backed temp-image store; and the sweep of expired images.

It runs in the small CPU container, whose image has no torch: nothing here reaches the model side
but through the contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from handlers.app import create_app
from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.engine import ModalEngine
from handlers.hosts.modal.volume import VolumeFiles, VolumeImageStore
from handlers.jobs.store import JobStore
from handlers.settings import ServerSettings
from pipelines.contract.served import ServedModels

log = logging.getLogger("imagegen")


def create_web_app(
    settings: ServerSettings,
    gpu_classes: Callable[[str], Any],
    volume: VolumeFiles,
    config: ModalDeployment,
    job_store: JobStore | None = None,
    signing_store: Any = None,
    **engine_options: Any,
) -> FastAPI:
    """The deployed app, from its parts: what `modal_app.web` serves, and what the tests drive.

    `gpu_classes` gives each served model's GPU class; `engine_options` reach the ModalEngine.
    `job_store` holds async jobs' records where every front container sees them (a modal.Dict);
    no front re-queues every unfinished job at its start, since another front may be running it:
    each front holds its jobs by a lease, and takes up only those whose lease has lapsed.
    `signing_store` (a modal.Dict) keeps the one local signing identity all fronts share, when the
    Secret holds no IMAGEGEN_C2PA_CERT/KEY: a reader sees one signer per deployment, not per container.
    It refuses to start without API keys unless Modal's proxy auth guards it."""
    if not settings.api_keys and not config.proxy_auth:
        raise RuntimeError(
            f"IMAGEGEN_API_KEYS is empty: refusing to serve an open API on a public URL. Put keys in the "
            f"Modal Secret '{config.secret_name}' (modal secret create {config.secret_name} "
            "IMAGEGEN_API_KEYS=sk-...), or deploy with IMAGEGEN_MODAL_PROXY_AUTH=1 to require Modal "
            "proxy-auth tokens instead."
        )
    served = ServedModels.from_names(config.models, settings.model_aliases, settings.lora_dir, config.extra_models)
    engine = ModalEngine(
        {spec.id: gpu_classes(spec.id) for spec in served.specs},
        deadline_seconds=config.deadline_seconds,
        **engine_options,
    )
    store = VolumeImageStore(
        settings.storage_dir, settings.image_ttl_seconds, volume, max_bytes=settings.storage_max_bytes
    )
    return create_app(settings, engine, store, served, job_store, recover_jobs=False, signing_store=signing_store)


def sweep_expired(settings: ServerSettings, volume: VolumeFiles) -> int:
    """Delete the expired temp images this container sees (reads already refuse them), committed."""
    removed = VolumeImageStore(settings.storage_dir, settings.image_ttl_seconds, volume).sweep()
    log.info("deleted %d expired temp images", removed)
    return removed
