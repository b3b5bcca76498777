"""`python scripts/deploy.py --verify`: after a deploy, one PASS/FAIL/SKIP line per thing only a
running deployment can show. Each check talks HTTP to the endpoint (httpx, or the official
`openai` client where following Modal's 303 is the point) and asks the GPU containers what they
run on (their `describe` method).

The same checks run offline in CI against the front over Modal's faked control plane
(tests/test_modal_verify.py); what only a live deployment has (GPU snapshots, Modal's 303 past
150 s) says SKIP there.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


class Deployed(Protocol):
    """What the checks need of a deployment: its URL and key, and its GPU containers."""

    base_url: str
    api_key: str
    live: bool

    # One GPU container of `model` says what it runs on (`GpuModel.describe`); `restart` stops it,
    # so the next call starts another (from its snapshot); `other_front` is a second front
    # container's base URL where one can be named (offline), else None.
    def describe(self, model: str) -> dict[str, Any]: ...

    def restart(self, model: str) -> None: ...

    def other_front(self) -> str | None: ...


class Skip(Exception):
    """The check cannot be made here (offline: no snapshots, no Modal proxy)."""


@dataclass
class Options:
    model: str
    size: str = "1024x1024"
    steps: int = 50  # a hung-up request (steps x n images) must still be running when the caller leaves
    hang_up_n: int = 1
    # The fields of a request that runs past 150 s (size, n, num_inference_steps); none: skip it.
    long_request: dict[str, Any] | None = None
    bound: float = 300.0  # seconds any wait here may take before it is a FAIL


def _client(deployed: Deployed, **timeout: float) -> httpx.Client:
    return httpx.Client(
        base_url=deployed.base_url,
        headers={"authorization": f"Bearer {deployed.api_key}"},
        timeout=httpx.Timeout(timeout.get("read", 600.0), connect=30.0),
    )


def _until(condition: Callable[[], bool], bound: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > bound:
            raise AssertionError(f"{what}: not within {bound:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - began


def _generate(deployed: Deployed, options: Options, **fields: Any) -> dict[str, Any]:
    return {"model": options.model, "prompt": "a lighthouse at dusk", "size": options.size, **fields}


def check_cuda(deployed: Deployed, options: Options) -> str:
    with _client(deployed) as http:
        answer = http.post("/v1/images/generations", json=_generate(deployed, options, response_format="b64_json"))
    assert answer.status_code == 200, f"first image: {answer.status_code} {answer.text[:200]}"
    cuda = deployed.describe(options.model)["cuda"]
    assert "driver " in cuda and "CUDA runtime " in cuda, cuda
    if deployed.live:
        assert cuda.startswith("GPU "), cuda  # torch sees the GPU: the driver runs this CUDA build
    return cuda


def check_snapshot(deployed: Deployed, options: Options) -> str:
    if not deployed.live:
        raise Skip("snapshots exist only for deployed apps")
    first = deployed.describe(options.model)["container"]
    deployed.restart(options.model)
    began = time.monotonic()
    second = deployed.describe(options.model)  # a cold start: restored from the snapshot
    assert second["container"] != first, "the same container answered: it was not stopped"
    assert second["restored"], "the second cold start did not restore a snapshot"
    return f"container {second['container']} restored in {time.monotonic() - began:.1f} s"


def check_playground(deployed: Deployed, options: Options) -> str:
    with httpx.Client(base_url=deployed.base_url, timeout=60) as http:
        page = http.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower(), f"GET /: {page.status_code}"
    return "GET / 200"


def _send_and_hang_up(deployed: Deployed, body: dict[str, Any], when: Callable[[], bool], bound: float) -> None:
    """POST `body` on a socket of our own, and close it once `when()` holds: a caller who hangs up
    (no client library lets another thread abort a request it is waiting on)."""
    url = httpx.URL(deployed.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    content = json.dumps(body).encode()
    head = (
        f"POST /v1/images/generations HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: Bearer {deployed.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n"
    )
    raw = socket.create_connection((url.host, port), timeout=30)
    sock = ssl.create_default_context().wrap_socket(raw, server_hostname=url.host) if url.scheme == "https" else raw
    try:
        sock.sendall(head.encode() + content)

        def taken() -> bool:
            if select.select([sock], [], [], 0)[0]:  # an answer came first: nothing left to hang up on
                answer = sock.recv(4096).decode(errors="replace")
                raise AssertionError(f"answered before the caller left ({answer[:300]!r}): raise --steps")
            return when()

        _until(taken, bound, "the GPU took the request")
    finally:
        sock.close()


def _stops_after_hang_up(deployed: Deployed, options: Options, body: dict[str, Any]) -> str:
    """The seconds from a caller hanging up on `body` (once the GPU holds it) until the GPU's
    container holds nothing again."""
    busy = lambda: deployed.describe(options.model)["busy"] > 0  # noqa: E731
    _until(lambda: not busy(), options.bound, "the GPU idle before the check")
    before = deployed.describe(options.model)
    _send_and_hang_up(deployed, body, busy, options.bound)
    idle = _until(lambda: not busy(), options.bound, "the GPU let go of the work")
    after = deployed.describe(options.model)
    # Stopped, not finished: the container counts how each of its jobs ended.
    assert after["container"] == before["container"], "another container answered: run with min-containers 1"
    assert after["made"] == before["made"], "the GPU finished the work nobody waited for"
    assert after["stopped"] > before["stopped"], "the GPU did not record the work as stopped"
    return f"the GPU stopped {idle:.1f} s after the caller hung up"


def check_hung_up_request(deployed: Deployed, options: Options) -> str:
    body = _generate(
        deployed, options, num_inference_steps=options.steps, n=options.hang_up_n, response_format="b64_json"
    )
    return _stops_after_hang_up(deployed, options, body)


def check_hung_up_stream(deployed: Deployed, options: Options) -> str:
    body = _generate(
        deployed, options, num_inference_steps=options.steps, n=options.hang_up_n, stream=True, partial_images=3
    )
    return _stops_after_hang_up(deployed, options, body)


def check_url_across_containers(deployed: Deployed, options: Options) -> str:
    with _client(deployed) as http:
        made = http.post("/v1/images/generations", json=_generate(deployed, options, response_format="url"))
    assert made.status_code == 200, made.text[:200]
    url = made.json()["data"][0]["url"]
    other = deployed.other_front()
    if other is not None:  # the same path on another front container
        url = other + httpx.URL(url).raw_path.decode()
    with httpx.Client(timeout=60) as http:
        fetched = http.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"].startswith("image/"), fetched.status_code
    return f"{len(fetched.content)} bytes from {'another container' if other else url}"


def check_past_the_web_window(deployed: Deployed, options: Options) -> str:
    if not deployed.live:
        raise Skip("Modal's 303 past 150 s happens only live")
    if not options.long_request:
        raise Skip("give --long-request, fields of a request that takes past 150 s")
    from openai import OpenAI

    # The official client, as users run it: it follows Modal's 303s (httpx, follow_redirects=True).
    sdk = OpenAI(base_url=f"{deployed.base_url}/v1", api_key=deployed.api_key, timeout=900, max_retries=0)
    fields = dict(options.long_request)
    began = time.monotonic()
    answer = sdk.images.generate(
        model=options.model,
        prompt="a lighthouse",
        size=fields.pop("size", options.size),
        n=fields.pop("n", 1),
        response_format="b64_json",
        extra_body=fields,
    )
    took = time.monotonic() - began
    assert answer.data and took > 150, f"answered in {took:.0f} s, inside the window: a longer --long-request"
    return f"answered after {took:.0f} s through Modal's 303s"


def check_job(deployed: Deployed, options: Options) -> str:
    """`Prefer: respond-async` -> 202 + Location: /v1/images/jobs/{id}, polled until `completed`."""
    with _client(deployed) as http:
        submitted = http.post(
            "/v1/images/generations", json=_generate(deployed, options), headers={"prefer": "respond-async"}
        )
        assert submitted.status_code == 202, f"submit: {submitted.status_code} {submitted.text[:200]}"
        location = submitted.headers["location"]  # absolute or not, the path names the job
        assert urlsplit(location).path.startswith("/v1/images/jobs/"), location
        state: dict[str, Any] = {}

        def done() -> bool:
            state.update(http.get(location).json())
            return state.get("status") in ("completed", "failed", "cancelled")

        took = _until(done, options.bound, "the job finished")
    assert state["status"] == "completed", state
    return f"{location} completed after {took:.1f} s of polling"


def check_mcp(deployed: Deployed, options: Options) -> str:
    """MCP's Streamable HTTP transport at /mcp: an `initialize` POST answers with the server's info."""
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "verify", "version": "1"},
        },
    }
    with _client(deployed, read=60.0) as http:
        answer = http.post("/mcp", json=request, headers={"accept": "application/json, text/event-stream"})
    assert answer.status_code == 200, f"/mcp: {answer.status_code} {answer.text[:200]}"
    assert "serverInfo" in answer.text, answer.text[:200]
    return "initialize answered"


CHECKS: dict[str, Callable[[Deployed, Options], str]] = {
    "cuda": check_cuda,
    "snapshot": check_snapshot,
    "playground": check_playground,
    "hung-up request": check_hung_up_request,
    "hung-up stream": check_hung_up_stream,
    "url across containers": check_url_across_containers,
    "past 150 s": check_past_the_web_window,
    "job": check_job,
    "mcp": check_mcp,
}


def verify(deployed: Deployed, options: Options, say: Callable[[str], None] = print) -> dict[str, str]:
    """Every check, one line each; the outcome of each ("PASS", "FAIL", "SKIP") by name."""
    outcomes = {}
    for name, check in CHECKS.items():
        began = time.monotonic()
        try:
            detail, outcome = check(deployed, options), "PASS"
        except Skip as skipped:
            detail, outcome = str(skipped), "SKIP"
        except Exception as failure:  # one check's failure must not hide the others' outcome
            detail, outcome = f"{type(failure).__name__}: {failure}", "FAIL"
        outcomes[name] = outcome
        say(f"{outcome} {name}: {detail} ({time.monotonic() - began:.1f} s)")
    return outcomes


class LiveDeployment:
    """The deployment `modal deploy` made, as the checks see it (needs a Modal token)."""

    live = True

    def __init__(self, deployment: Any, api_key: str) -> None:
        import modal

        self.deployment = deployment
        self.api_key = api_key
        self.base_url = modal.Function.from_name(deployment.app_name, "web").get_web_url().rstrip("/")

    def _instance(self, model: str) -> Any:
        import modal

        return modal.Cls.from_name(self.deployment.app_name, self.deployment.class_name(model))()

    def describe(self, model: str) -> dict[str, Any]:
        return self._instance(model).describe.remote()

    def restart(self, model: str) -> None:
        import subprocess
        import sys

        container = self.describe(model)["container"]
        stop = [sys.executable, "-m", "modal", "container", "stop", "--yes", container]
        subprocess.run(stop, check=True, capture_output=True, timeout=120)

    def other_front(self) -> str | None:
        return None  # Modal routes each request; which container answers is not ours to pick
