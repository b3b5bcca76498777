"""The `imagegen` command: serve the API, list models, or make one image without a server.

Each command imports what it needs inside its function: the web app, torch and diffusers take
seconds to import, and `--help`, `models` or `pull` should answer at once (a new command too).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.hosts.jobs_cli import add_jobs_command
from pipelines.contract.catalog import CATALOG, DEFAULT_MODELS

if TYPE_CHECKING:
    from handlers.hosts.local_settings import LocalSettings

log = logging.getLogger("imagegen")


def _settings(args: argparse.Namespace) -> LocalSettings:
    """Environment settings, with the command line's choices on top."""
    from handlers.hosts.local_settings import LocalSettings

    overrides = {}
    if getattr(args, "model", None):
        overrides["models"] = args.model
    if getattr(args, "device", None):
        overrides["device"] = args.device
    if getattr(args, "preload", False):
        overrides["preload"] = True
    if getattr(args, "threads", None):
        overrides["threads"] = args.threads
    return LocalSettings(**overrides)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from handlers.hosts.connections import guarded
    from handlers.hosts.draining import DrainingServer
    from handlers.hosts.local import create_local_app
    from handlers.hosts.start_up import warm_start
    from handlers.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_format, getattr(logging, args.log_level.upper(), logging.INFO))
    app = create_local_app(settings)
    app.state.services.engine.worker.models.say_absent_weights()
    # log_config=None: our logging, one line per request, no access log of uvicorn's.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
        timeout_keep_alive=settings.idle_timeout_seconds,
        http=guarded(settings.header_timeout_seconds, settings.max_connections_per_client),
    )
    server = DrainingServer(config, app.state.services.engine, settings.shutdown_timeout_seconds)
    warm_start(
        app,
        settings,
        listening=lambda: server.started,
        answered=lambda: server.server_state.total_requests > 0,  # counted as each response completes
    )
    server.run()


def _operator_models(settings: LocalSettings) -> tuple[Any, ...]:
    """The entries of the operator's models file, if there is one."""
    from pipelines.contract.models_file import read_models_file

    return read_models_file(settings.models_file) if settings.models_file else ()


def models(args: argparse.Namespace) -> None:
    from pipelines.weights import is_present

    settings = _settings(args)
    rows = [("id", "family", "tasks", "default size", "here", "description")]
    for spec in (*CATALOG.values(), *_operator_models(settings)):
        default = " (served by default)" if spec.id in DEFAULT_MODELS else ""
        here = (
            "built-in" if spec.source.startswith("tiny:") else "yes" if is_present(spec, settings.cache_dir) else "no"
        )
        rows.append(
            (
                spec.id,
                spec.family,
                ",".join(spec.tasks),
                f"{spec.default_size[0]}x{spec.default_size[1]}",
                here,
                spec.description + default,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5])
    print("\n`here`: whether the weights are on this machine (`imagegen pull ID` fetches them).")
    print(
        "Any local diffusers folder, or a single-file checkpoint (.safetensors) of SD, SDXL or FLUX.1, can be "
        "served too: imagegen serve --model /path/to/it"
    )


def generate(args: argparse.Namespace) -> None:
    """One image (or n) straight through the Worker, resolved exactly as the API would."""
    from handlers.hosts.local import local_worker, served_models
    from handlers.images.resolve import generation_job, resolve_model
    from handlers.images.schemas import ImageGenerationRequest

    settings = _settings(args)
    served = served_models(settings)
    request = ImageGenerationRequest(
        prompt=args.prompt,
        model=args.model[0] if args.model else None,
        n=args.n,
        size=args.size,
        seed=args.seed,
        num_inference_steps=args.steps,
        quality=args.quality,
    )
    out = Path(args.output)
    # Before any work: where the files go, and in which format.
    if not out.parent.is_dir():
        sys.exit(f"imagegen: cannot write {out}: the folder {out.parent} does not exist")
    output_format = _OUTPUT_FORMATS.get(out.suffix.lower())
    if output_format is None:
        sys.exit(f"imagegen: cannot write {out}: name it .png, .jpg or .webp")
    request = request.model_copy(update={"output_format": output_format})
    spec = resolve_model(request.model, served, "generate")
    job = generation_job(request, spec, settings.max_prompt_chars)
    worker = local_worker(served, settings, max_loaded=1)
    # A terminal, not a server log: the steps' progress bar is welcome here.
    worker.models.get(spec.id).pipe.set_progress_bar_config(disable=False, desc=spec.id, leave=False)
    for index, data in enumerate(worker.run(job).images):
        path = out if index == 0 else out.with_name(f"{out.stem}-{index}{out.suffix}")
        path.write_bytes(data)
        print(f"{path}  ({job.output_width}x{job.output_height}, {spec.id}, seed {job.seeds[index]})")


_OUTPUT_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def pull(args: argparse.Namespace) -> None:
    """Fetch models' weights now (hub downloads show their progress), so the server never waits."""
    from pipelines.contract.catalog import lookup
    from pipelines.contract.matting import MATTING_MODELS
    from pipelines.matting.matte import fetch_matting
    from pipelines.weights import fetch

    settings = _settings(args)
    for name in args.model:
        # A matting model (what transparent backgrounds use) is pulled like an image model.
        spec = MATTING_MODELS[name] if name in MATTING_MODELS else lookup(name, _operator_models(settings))
        if spec.source.startswith("hub:"):  # before the seconds of importing diffusers
            print(f"{spec.id}: fetching {spec.source.removeprefix('hub:')} at {spec.revision}", flush=True)
        began = time.monotonic()
        try:
            where = (
                fetch_matting(spec, settings.cache_dir) if name in MATTING_MODELS else fetch(spec, settings.cache_dir)
            )
        except Exception as exc:  # the hub's own errors: offline, gated, no such revision
            sys.exit(f"imagegen: could not fetch {spec.id}: {_hub_trouble(spec, exc)}")
        print(f"{spec.id}: ready in {where} ({time.monotonic() - began:.1f} s)")


def _hub_trouble(spec: Any, exc: Exception) -> str:
    """One line: what went wrong fetching `spec` from the hub, and what to do about it."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = spec.source.removeprefix("hub:")
    where = f"{repo} at revision {spec.revision}"
    trouble = exc
    while trouble is not None and not isinstance(
        trouble, (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError)
    ):
        trouble = trouble.__cause__ or trouble.__context__
    if isinstance(trouble, GatedRepoError):
        return (
            f"{where} is gated: accept its terms at https://huggingface.co/{repo} and set HF_TOKEN to a token "
            "of that account."
        )
    if isinstance(trouble, RevisionNotFoundError):
        return f"{where}: no such revision on the hub."
    if isinstance(trouble, RepositoryNotFoundError):
        return f"{where}: no such repository, or it is private (set HF_TOKEN)."
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    # diffusers words a failed metadata fetch as a cache miss ("not fully cached locally").
    if offline or isinstance(trouble, LocalEntryNotFoundError) or "cached locally" in str(exc):
        return (
            f"{where} could not be downloaded: the hub is not reachable from here (no network, or "
            "HF_HUB_OFFLINE is set). Pull on a machine with network access and copy the hub cache "
            "(HF_HOME), or unset HF_HUB_OFFLINE."
        )
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{where}: {reason}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the OpenAI-compatible API on this machine")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--model",
        action="extend",
        nargs="+",
        metavar="ID-OR-PATH",
        help="catalog ids or diffusers folders to serve; the first is the default "
        f"(default: {','.join(DEFAULT_MODELS)})",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--preload", action="store_true", help="load the models at start, not on first use")
    p.add_argument("--threads", type=int, help="torch's CPU threads (default: the cores less one)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=serve)

    p = commands.add_parser("models", help="list the model catalog, and which models are on this machine")
    p.set_defaults(run=models)

    p = commands.add_parser("pull", help="download (or build) models' weights ahead of time")
    p.add_argument("model", nargs="+", metavar="ID", help="catalog ids, e.g. sdxl-turbo")
    p.set_defaults(run=pull)

    p = commands.add_parser("generate", help="make images from a prompt, no server needed")
    p.add_argument("prompt")
    p.add_argument(
        "-o", "--output", default="out.png", help="file to write, .png, .jpg or .webp (more images: out-1.png, …)"
    )
    p.add_argument("--model", action="extend", nargs=1, metavar="ID-OR-PATH")
    p.add_argument("--size")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--quality", choices=["low", "standard", "hd"])
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.set_defaults(run=generate)

    add_jobs_command(commands)
    return parser


def _trouble(exc: Exception) -> str | None:
    """The one line a user's mistake is told in, or None for a bug (then the traceback shows)."""
    from pydantic import ValidationError

    from handlers.http_errors import from_validation
    from pipelines.contract.catalog import UnknownModel
    from pipelines.contract.errors import APIError
    from pipelines.contract.models_file import ModelsFileError
    from pipelines.devices import DeviceUnavailable

    if isinstance(exc, (UnknownModel, DeviceUnavailable, ModelsFileError)):
        return str(exc)
    if isinstance(exc, ValidationError):
        return from_validation(exc.errors()).message
    if isinstance(exc, APIError):
        return exc.message
    return None


def main(argv: list[str] | None = None) -> None:
    from handlers.logs import configure_logging

    args = _parser().parse_args(argv)
    configure_logging()
    try:
        args.run(args)
    except Exception as exc:
        trouble = _trouble(exc)
        if trouble is None:
            raise
        sys.exit(f"imagegen: {trouble}")


if __name__ == "__main__":
    main()
