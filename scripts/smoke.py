"""Smoke-test a running imagegen through the official `openai` SDK, as a user would.

    python scripts/smoke.py --url https://<workspace>--imagegen-web.modal.run --key sk-...

Lists the models, generates with `url` (and fetches it, keyless, as a browser would) and with
`b64_json`, then edits with a mask and checks that the unmasked pixels came back unchanged.

The first request that needs a GPU may find none warm: a fresh deployment answers 503
`model_busy` (or 429/503 with `Retry-After` while a pool is saturated) until a container is up.
The smoke test waits as told and asks again, for up to `--cold-timeout` seconds, and reports that
cold first image apart from the warm requests that follow.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from openai import APIStatusError, OpenAI
from PIL import Image

PROMPT = "a lighthouse on a rocky coast at dusk, oil painting"
# Answers that mean "not now": the server says when to ask again.
_RETRYABLE = (429, 503)


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def _mask(size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """An opaque mask with a transparent hole (alpha 0 = edit) over the middle ninth."""
    width, height = size
    hole = (width // 3, height // 3, 2 * width // 3, 2 * height // 3)
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), hole)
    return mask, hole


class Smoke:
    """The steps, in order; each returns a line for the report or raises."""

    def __init__(
        self,
        client: OpenAI,
        http: httpx.Client,
        model: str | None,
        size: str | None,
        cold_timeout: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.http = http
        self.model = model
        self.size = size
        self.cold_timeout = cold_timeout
        self.sleep = sleep
        self.capabilities: dict[str, dict[str, Any]] = {}
        self.generated: bytes = b""
        self.waited: list[str] = []  # the step's "not now" answers, by error code

    def _patiently(self, call: Callable[[], Any]) -> Any:
        """`call()`, asked again after each 429/503 that says when (Retry-After), for up to
        `cold_timeout` seconds: how a first request outlasts a cold start."""
        give_up = time.monotonic() + self.cold_timeout
        while True:
            try:
                return call()
            except APIStatusError as exc:
                retry_after = exc.response.headers.get("retry-after")
                told_not_to = exc.response.headers.get("x-should-retry") == "false"
                if exc.status_code not in _RETRYABLE or retry_after is None or told_not_to:
                    raise
                wait = max(0.1, float(retry_after))
                if time.monotonic() + wait > give_up:
                    raise
                code = exc.body.get("code") if isinstance(exc.body, dict) else None
                self.waited.append(code or str(exc.status_code))
                self.sleep(wait)

    def _pick(self, task: str) -> str:
        if self.model and task in self.capabilities[self.model]["tasks"]:
            return self.model
        return next(model for model, caps in self.capabilities.items() if task in caps["tasks"])

    def _size_for(self, model: str) -> str:
        return self.size or self.capabilities[model]["default_size"]

    def list_models(self) -> str:
        models = self.client.models.list(extra_query={"type": "image_generation"}).data
        self.capabilities = {model.id: model.capabilities for model in models}
        if not self.capabilities:
            raise AssertionError("no models listed")
        if self.model and self.model not in self.capabilities:
            raise AssertionError(f"{self.model} is not served (served: {', '.join(self.capabilities)})")
        return f"models: {', '.join(self.capabilities)}"

    def generate_url(self) -> str:
        model = self._pick("generate")
        size = self._size_for(model)
        url = (
            self._patiently(lambda: self.client.images.generate(model=model, prompt=PROMPT, size=size, n=1)).data[0].url
        )
        fetched = self.http.get(url)  # no key: temp-image URLs are capabilities
        fetched.raise_for_status()
        if not fetched.headers["content-type"].startswith("image/"):
            raise AssertionError(f"{url} answered {fetched.headers['content-type']}")
        if _image(fetched.content).size != _size(size):
            raise AssertionError(f"fetched image is {_image(fetched.content).size}, asked {size}")
        self.generated = fetched.content
        return f"generate {model} {size} -> URL fetched ({len(fetched.content)} bytes)"

    def generate_b64(self) -> str:
        model = self._pick("generate")
        size = self._size_for(model)
        response = self._patiently(
            lambda: self.client.images.generate(model=model, prompt=PROMPT, size=size, n=1, response_format="b64_json")
        )
        image = _image(base64.b64decode(response.data[0].b64_json))
        if image.size != _size(size):
            raise AssertionError(f"b64_json image is {image.size}, asked {size}")
        return f"generate {model} {size} -> b64_json"

    def edit_with_mask(self) -> str:
        model = self._pick("edit")
        original = _image(self.generated).convert("RGB")  # the URL step's image, as a user would edit it
        mask, hole = _mask(original.size)
        response = self._patiently(
            lambda: self.client.images.edit(
                model=model,
                prompt="a full moon in the sky",
                response_format="b64_json",
                image=("image.png", _png(original), "image/png"),
                mask=("mask.png", _png(mask), "image/png"),
            )
        )
        edited = _image(base64.b64decode(response.data[0].b64_json)).convert("RGB")
        if edited.size != original.size:
            raise AssertionError(f"edit returned {edited.size}, sent {original.size}")
        for image in (original, edited):
            image.paste((0, 0, 0), hole)  # what remains must be byte-identical
        if original.tobytes() != edited.tobytes():
            raise AssertionError("pixels outside the mask changed")
        return f"edit {model} {original.width}x{original.height} with mask -> outside the hole unchanged"


def run_smoke(
    base_url: str,
    api_key: str,
    model: str | None = None,
    *,
    size: str | None = None,
    headers: dict[str, str] | None = None,
    cold_timeout: float = 600.0,
    out: Callable[[str], None] = print,
) -> bool:
    """Every step against `base_url` (the server's root, without /v1); True when all passed.

    The first image step is the cold one (its line says `cold`, and what it waited out); the
    steps after it are warm, and the last line sets the two latencies side by side."""
    base_url = base_url.rstrip("/")
    client = OpenAI(
        api_key=api_key, base_url=f"{base_url}/v1", max_retries=0, timeout=600, default_headers=headers or {}
    )
    with client, httpx.Client(headers=headers or {}, timeout=120) as http:
        smoke = Smoke(client, http, model, size, cold_timeout)
        out(f"smoke test of {base_url}")
        latencies: dict[str, list[float]] = {"cold": [], "warm": []}
        for index, step in enumerate((smoke.list_models, smoke.generate_url, smoke.generate_b64, smoke.edit_with_mask)):
            temperature = "" if index == 0 else "cold" if index == 1 else "warm"
            smoke.waited = []
            started = time.perf_counter()
            try:
                line = step()
            except Exception as exc:
                waited = f" (after waiting out {_counted(smoke.waited)})" if smoke.waited else ""
                out(
                    f"FAIL {time.perf_counter() - started:7.2f} s  {step.__name__}: {type(exc).__name__}: {exc}{waited}"
                )
                return False
            seconds = time.perf_counter() - started
            if temperature:
                latencies[temperature].append(seconds)
            waited = f" (waited out {_counted(smoke.waited)})" if smoke.waited else ""
            out(f"ok   {seconds:7.2f} s  {temperature:<4}  {line}{waited}")
    warm = latencies["warm"]
    out(f"latency: cold first image {latencies['cold'][0]:.2f} s; warm {min(warm):.2f}-{max(warm):.2f} s")
    out("all checks passed")
    return True


def _counted(codes: list[str]) -> str:
    return ", ".join(f"{codes.count(code)} x {code}" for code in dict.fromkeys(codes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("IMAGEGEN_URL"), help="the server's root URL")
    parser.add_argument("--key", default=os.environ.get("IMAGEGEN_API_KEY", ""), help="an API key")
    parser.add_argument("--model", help="the model to test (default: the first served)")
    parser.add_argument("--size", help="WxH for every step (default: each model's default size)")
    parser.add_argument(
        "--cold-timeout",
        type=float,
        default=600.0,
        help="seconds the first image may take, retries of a cold start included (default 600)",
    )
    parser.add_argument("--modal-key", help="Modal proxy-auth token id, for a deploy with proxy auth")
    parser.add_argument("--modal-secret", help="Modal proxy-auth token secret")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url (or IMAGEGEN_URL) is required")
    headers = {"Modal-Key": args.modal_key, "Modal-Secret": args.modal_secret} if args.modal_key else None
    sys.exit(
        0
        if run_smoke(args.url, args.key, args.model, size=args.size, headers=headers, cold_timeout=args.cold_timeout)
        else 1
    )


if __name__ == "__main__":
    main()
