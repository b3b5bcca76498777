"""Deploy imagegen to Modal in one go, and print its URL.

    python scripts/deploy.py --models sdxl-turbo,flux-schnell --gpu flux-schnell=H200 --min-containers 1

In order: check the choices (offline, before anything is created); create the Secret with a
fresh API key if it is missing (the key is printed once); fetch the models' pinned weights into
the weights Volume; `modal deploy modal_app.py` (each model its own GPU class, `--min-containers` kept warm);
print the URL; with `--smoke`, run the smoke test against it. `--dry-run` stops after the check.

Every flag has an environment twin that `modal_app.py` reads (IMAGEGEN_MODELS,
IMAGEGEN_MODAL_*), so `modal deploy modal_app.py` with the same environment deploys the same app.
Needs a Modal token (`modal setup`); HF_TOKEN in the environment goes into a new Secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/deploy.py` from a checkout
    sys.path.insert(0, str(ROOT))

# Flag → the environment variable modal_app.py reads for it.
FLAGS = {
    "models": "IMAGEGEN_MODELS",
    "app_name": "IMAGEGEN_MODAL_APP_NAME",
    "secret_name": "IMAGEGEN_MODAL_SECRET_NAME",
    "min_containers": "IMAGEGEN_MODAL_MIN_CONTAINERS",
    "max_containers": "IMAGEGEN_MODAL_MAX_CONTAINERS",
    "scaledown_window": "IMAGEGEN_MODAL_SCALEDOWN_WINDOW",
    "timeout": "IMAGEGEN_MODAL_TIMEOUT",
    "proxy_auth": "IMAGEGEN_MODAL_PROXY_AUTH",
    "cpu": "IMAGEGEN_MODAL_CPU",
    "buffer_containers": "IMAGEGEN_MODAL_BUFFER_CONTAINERS",
    "regions": "IMAGEGEN_MODAL_REGIONS",
    "snapshot": "IMAGEGEN_MODAL_SNAPSHOT",
}
# Settings of the service itself, forwarded to the web containers as they are.
SERVICE_FLAGS = {
    "aliases": "IMAGEGEN_MODEL_ALIASES",
    "public_url": "IMAGEGEN_PUBLIC_URL",
    "ttl": "IMAGEGEN_IMAGE_TTL_SECONDS",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated catalog ids; the first is the default (sdxl-turbo)")
    parser.add_argument(
        "--gpu",
        action="append",
        default=[],
        metavar="MODEL=GPU[|GPU…]",
        help="a model's GPUs instead of the catalog's, preferred first, e.g. flux-schnell=H100|A100-80GB (repeatable)",
    )
    parser.add_argument(
        "--memory",
        action="append",
        default=[],
        metavar="MODEL=GiB",
        help="host RAM per GPU container of a model, instead of the catalog's (repeatable)",
    )
    parser.add_argument("--cpu", type=float, help="CPU cores per GPU container (default 4)")
    parser.add_argument("--regions", help="comma-separated Modal regions the GPUs may run in (default: any)")
    parser.add_argument("--buffer-containers", type=int, help="idle GPUs kept ready per model while it is busy")
    parser.add_argument(
        "--snapshot",
        choices=("gpu", "cpu", "off"),
        help="cold starts restore a GPU memory snapshot (default), a CPU one, or none",
    )
    parser.add_argument("--min-containers", type=int, help="warm GPUs kept per model, even idle (billed)")
    parser.add_argument("--max-containers", type=int, help="most GPUs per model under load")
    parser.add_argument("--scaledown-window", type=int, help="idle seconds before a warm GPU goes (2-3600)")
    parser.add_argument("--timeout", type=int, help="seconds one job may run on a GPU")
    parser.add_argument(
        "--proxy-auth",
        action="store_true",
        default=None,
        help="guard the endpoint with Modal proxy auth (then API keys are optional)",
    )
    parser.add_argument("--app-name", help="Modal app name (default imagegen)")
    parser.add_argument("--secret-name", help="Modal Secret with IMAGEGEN_API_KEYS (default imagegen)")
    parser.add_argument("--aliases", help="name=model pairs, e.g. dall-e-3=flux-schnell")
    parser.add_argument("--public-url", help="base of returned image URLs, if not the Modal URL")
    parser.add_argument("--ttl", type=int, help="seconds temp-image URLs live (default 3600)")
    parser.add_argument("--skip-download", action="store_true", help="the weights Volume is already filled")
    parser.add_argument("--smoke", action="store_true", help="smoke-test the deployment when it is up")
    parser.add_argument(
        "--key",
        default=os.environ.get("IMAGEGEN_API_KEY", ""),
        help="API key for --smoke when the Secret already exists",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the choices and print the plan; touch nothing")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="deploy nothing: check the deployed app, one PASS/FAIL line per check (needs --key)",
    )
    parser.add_argument("--verify-model", help="the model --verify uses (default: the first served)")
    parser.add_argument(
        "--long-request",
        help='--verify: JSON fields of a request that takes past 150 s, e.g. \'{"size": "2048x2048", "n": 4}\'',
    )
    return parser.parse_args(argv)


def deploy_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment variables the flags set: what modal_app.py reads, here and in the `modal`
    commands below (the environment supplies whatever the flags leave out)."""
    env = {}
    for flag, variable in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            env[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    if args.gpu:
        env["IMAGEGEN_MODAL_GPUS"] = ",".join(args.gpu)
    if args.memory:
        env["IMAGEGEN_MODAL_MEMORY_GIB"] = ",".join(args.memory)
    for flag, variable in SERVICE_FLAGS.items():
        if getattr(args, flag) is not None:
            env[variable] = str(getattr(args, flag))
    return env


def check() -> Any:
    """The deployment the environment describes, or exit saying why (no traceback: it is the
    operator's input, not a bug)."""
    from pydantic import ValidationError

    flags = {variable: f"--{flag.replace('_', '-')}" for flag, variable in FLAGS.items()}
    try:
        from handlers.hosts.modal.deployment import ModalDeployment

        return ModalDeployment()
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            where = [str(part) for part in error["loc"]]
            if where:
                variable = where[0] if where[0].startswith("IMAGEGEN_") else f"IMAGEGEN_MODAL_{where[0].upper()}"
                message = f"{flags.get(variable, variable)}: {message}"
            reasons.append(message)
        sys.exit(f"deploy: {'; '.join(reasons)}")


def plan(deployment: Any, args: argparse.Namespace) -> list[str]:
    from handlers.hosts.modal.cost import dollars_per_hour, region_multiplier

    steps = [f"secret   {deployment.secret_name}: create with a new API key if missing"]
    if not args.skip_download:
        steps.append(f"weights  modal run modal_app.py::download --models {','.join(deployment.models)}")
    steps.append(f"deploy   modal deploy modal_app.py  (app {deployment.app_name})")
    for model_id in deployment.models:
        steps.append(
            f"pool     {model_id} on {'|'.join(deployment.gpus_for(model_id))} "
            f"({deployment.memory_mib_for(model_id) // 1024} GiB RAM, {deployment.cpu:g} CPU): "
            f"{deployment.min_containers} warm, at most {deployment.max_containers}, "
            f"idle {deployment.scaledown_window} s, {deployment.snapshot} snapshot"
        )
        cost = dollars_per_hour(deployment, model_id)
        multiplier = region_multiplier(deployment.regions)
        steps.append(
            f"cost     {model_id}: "
            + ("no estimate for this GPU (see modal.com/pricing)" if cost is None else f"${cost:.2f}/h per container")
            + (f", regions set: x{multiplier:g}" if multiplier != 1 else "")
        )
    if deployment.proxy_auth:
        steps.append("auth     Modal proxy auth (Modal-Key / Modal-Secret headers) on every request")
    return steps


def ensure_secret(name: str) -> str | None:
    """Create the Secret with a new key if it is missing; the new key, or None if it existed."""
    import modal
    from modal.exception import AlreadyExistsError

    key = f"sk-{secrets.token_urlsafe(32)}"
    contents = {"IMAGEGEN_API_KEYS": key}
    if os.environ.get("HF_TOKEN"):
        contents["HF_TOKEN"] = os.environ["HF_TOKEN"]
    try:
        modal.Secret.objects.create(name, contents)
    except AlreadyExistsError:
        return None
    return key


def check_images_volume(name: str, open_volume: Any = None) -> None:
    """Exit saying what to do if the temp-image Volume exists as v1 (an earlier deploy made it):
    modal_app asks for v2 (no file-count limit), and modal refuses the mismatch with an
    InvalidError when `modal deploy` loads the app (`_validate_volume_version`, `modal/volume.py`)."""
    import modal
    from modal.exception import InvalidError

    if open_volume is None:

        def open_volume() -> None:
            modal.Volume.from_name(name, create_if_missing=True, version=2).hydrate()

    try:
        open_volume()
    except InvalidError as exc:
        if "has version v1" not in str(exc):
            raise
        sys.exit(
            f"deploy: the Volume '{name}' is a v1 Volume, from an earlier deploy; the temp images need a v2 one "
            f"(no file-count limit). Its images expire within the hour anyway: delete it with "
            f"`modal volume delete {name}` and deploy again, or deploy under another --app-name."
        )


def modal_cli(*command: str) -> None:
    result = subprocess.run([sys.executable, "-m", "modal", *command], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"deploy: `modal {' '.join(command)}` failed (exit {result.returncode})")


def run_verify(deployment: Any, args: argparse.Namespace) -> int:
    """The checks of scripts/verify_deploy.py against the live app; 1 if any failed."""
    import json

    from scripts.verify_deploy import LiveDeployment, Options, verify

    if not args.key:
        sys.exit("deploy: --verify needs --key (or IMAGEGEN_API_KEY)")
    options = Options(
        model=args.verify_model or deployment.models[0],
        long_request=json.loads(args.long_request) if args.long_request else None,
    )
    outcomes = verify(LiveDeployment(deployment, args.key), options)
    return 1 if "FAIL" in outcomes.values() else 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.update(deploy_env(args))
    deployment = check()
    if args.verify:
        sys.exit(run_verify(deployment, args))
    for step in plan(deployment, args):
        print(step)
    if args.dry_run:
        return

    import modal

    key = ensure_secret(deployment.secret_name)
    if key:
        print(f"\nCreated Secret '{deployment.secret_name}'. Your API key (shown once):\n\n    {key}\n")
    if not args.skip_download:
        modal_cli("run", "modal_app.py::download", "--models", ",".join(deployment.models))
    check_images_volume(f"{deployment.app_name}-images")
    modal_cli("deploy", "modal_app.py")  # each model's class carries its min_containers
    url = modal.Function.from_name(deployment.app_name, "web").get_web_url()
    print(
        f"\nimagegen is up: {url}/v1  (OpenAI base_url)\n"
        f"smoke test:     python scripts/smoke.py --url {url} --key <your key>"
    )
    if args.smoke:
        from scripts.smoke import run_smoke

        if not run_smoke(url, key or args.key):
            sys.exit(1)


if __name__ == "__main__":
    main()
