"""`imagegen jobs`: list, show and cancel a server's async jobs from the shell, with the API key
whose jobs they are (`--key`, or IMAGEGEN_API_KEY / OPENAI_API_KEY), over the server's HTTP API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any


def add_jobs_command(commands: Any) -> None:
    p = commands.add_parser("jobs", help="list, show or cancel a server's async image jobs")
    p.add_argument(
        "--url",
        default=os.environ.get("IMAGEGEN_URL", "http://127.0.0.1:8000"),
        help="the server (default: $IMAGEGEN_URL or http://127.0.0.1:8000)",
    )
    p.add_argument("--key", default=os.environ.get("IMAGEGEN_API_KEY") or os.environ.get("OPENAI_API_KEY"))
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="this key's recent jobs, newest first")
    listing.add_argument("--limit", type=int, default=20)
    actions.add_parser("show", help="one job, as JSON (its result when completed)").add_argument("id")
    actions.add_parser("cancel", help="cancel a queued or running job").add_argument("id")
    p.set_defaults(run=jobs)


def _line(job: dict[str, Any]) -> str:
    progress = job["progress"]
    created = datetime.fromtimestamp(job["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{job['id']}  {job['status']:<11}  step {progress['step']}/{progress['steps']}  "
        f"{job['model']}  {job['endpoint'].rsplit('/', 1)[-1]}  {created}"
    )


def jobs(args: argparse.Namespace) -> None:
    import httpx  # here: every other command would import it too (this module is read for --help)

    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    base = f"{args.url.rstrip('/')}/v1/images/jobs"
    try:
        with httpx.Client(headers=headers, timeout=60, trust_env=False) as http:
            if args.action == "list":
                response = http.get(base, params={"limit": args.limit})
            elif args.action == "show":
                response = http.get(f"{base}/{args.id}")
            else:
                response = http.delete(f"{base}/{args.id}")
    except httpx.HTTPError as exc:
        sys.exit(f"imagegen: could not reach {args.url}: {exc}")
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code >= 400:
        sys.exit(f"imagegen: {body.get('error', {}).get('message') or f'HTTP {response.status_code}'}")
    if args.action == "list":
        for job in body["data"]:
            print(_line(job))
        if not body["data"]:
            print("no jobs")
    elif args.action == "show":
        print(json.dumps(body, indent=2))
    else:
        print(_line(body))
