"""Past Modal's 150 s web window: Modal's proxy answers a request still running with a 303 to a
result URL that waits again (modal.com/docs/guide/webhook-timeouts), and the official `openai`
client, as users construct it, follows it with a GET that carries the key and no body, and gets
the answer. The proxy is faked at that boundary with a short window; the front and its deadline
are the deployed ones."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import modal
import pytest
from openai import OpenAI
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response

from handlers.hosts.modal.deployment import ModalDeployment
from handlers.hosts.modal.web import create_web_app
from handlers.settings import ServerSettings
from pipelines.contract.job import Job, Rendered
from pipelines.contract.usage import Usage
from tests.conftest import API_KEY, png, png_bytes
from tests.modal_control_plane import Deployment
from tests.test_modal_verify import ServedFront
from tests.test_modal_volume_store import SharedVolume

WINDOW = 0.5  # the fake proxy's web window (Modal's: 150 s); the deployed deadline scaled with it
MODAL_WINDOW = 150.0
DEADLINE = WINDOW * ModalDeployment(models=["tiny-sd"]).deadline_seconds / MODAL_WINDOW
IMAGE = png_bytes(Image.new("RGB", (64, 64), "navy"))


class Slow:
    """A GPU class whose job takes two web windows (a long job: past the window, inside the deadline)."""

    @modal.method()
    async def run(self, job: Job, cancel_key: str | None = None, report_steps: bool = False) -> Rendered:
        await asyncio.sleep(WINDOW * 2)
        return Rendered([IMAGE] * job.n, Usage())


class ModalProxy:
    """Modal's web proxy in front of one front container: a request not answered within the
    window gets a 303 to the same URL with `__modal_function_call_id`, which waits again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.pending: dict[str, asyncio.Task[httpx.Response]] = {}
        self.seen: list[tuple[str, str, int, str | None]] = []  # method, query, body bytes, authorization

    async def _forward(self, request: Request, body: bytes) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as upstream:
            return await upstream.request(request.method, request.url.path, content=body, headers=headers)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        self.seen.append((request.method, request.url.query, len(body), request.headers.get("authorization")))
        call_id = request.query_params.get("__modal_function_call_id")
        if call_id is None:
            call_id = f"fc-{len(self.pending) + 1}"
            self.pending[call_id] = asyncio.ensure_future(self._forward(request, body))
        done, _ = await asyncio.wait({self.pending[call_id]}, timeout=WINDOW)
        if not done:
            location = f"{request.url.path}?__modal_function_call_id={call_id}"
            response = Response(status_code=303, headers={"location": location})
        else:
            answer = self.pending[call_id].result()
            response = Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
        await response(scope, receive, send)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, ModalProxy]]:
    gpus = Deployment(lambda model_id: Slow())
    front = ServedFront(
        create_web_app(
            ServerSettings(api_keys=API_KEY, storage_dir=tmp_path),
            gpus.gpu_class,
            SharedVolume().mount(tmp_path),
            ModalDeployment(models=["tiny-sd"], deadline_seconds=DEADLINE),
            function_call=gpus.plane.from_id,
        )
    )
    proxy = ModalProxy(front.url)
    edge = ServedFront(proxy)
    try:
        yield edge.url, proxy
    finally:
        edge.stop()
        front.stop()
        gpus.close()


def test_the_openai_client_follows_modals_303_past_the_window_and_gets_the_images(
    proxied: tuple[str, ModalProxy],
) -> None:
    url, proxy = proxied
    # Its own http client, as users make it (the SDK's defaults decide whether a 303 is followed).
    with OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0) as sdk:
        began = time.monotonic()
        answer = sdk.images.generate(model="tiny-sd", prompt="a lighthouse", size="64x64", response_format="b64_json")
    assert png(base64.b64decode(answer.data[0].b64_json)).tobytes() == png(IMAGE).tobytes()  # signed on the way
    assert time.monotonic() - began > WINDOW  # it did outlast the window
    first, *followed = proxy.seen
    assert first[0] == "POST" and first[2] > 0
    assert followed, "no redirect was followed"
    # What the client sends after a 303: a GET, no body, the key still on it (same origin).
    assert all(
        method == "GET" and "__modal_function_call_id=" in query and size == 0 and auth == f"Bearer {API_KEY}"
        for method, query, size, auth in followed
    )
