"""The MCP endpoint through the official MCP client (Streamable HTTP) against a real server:
the handshake, the tools and their schemas, images that decode to the asked size, edits, OpenAI's
errors as tool errors, the key, progress, and the same log line and metrics as the HTTP API."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult, ImageContent
from openai import OpenAI
from PIL import Image

from tests.conftest import API_KEY, Server, png, png_bytes
from tests.job_helpers import SMALL as SMALL_JOB
from tests.job_helpers import UNTIL_CANCELLED, submit, wait_for

SMALL = {"model": "tiny-sd", "size": "64x64", "num_inference_steps": 1}


@asynccontextmanager
async def mcp_session(server: Server, key: str | None = API_KEY) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def with_session(server: Server, work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with mcp_session(server) as session:
            return await work(session)

    return asyncio.run(run())


def call(server: Server, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    return with_session(server, lambda session: session.call_tool(tool, arguments))


def images(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def decoded(block: ImageContent) -> Image.Image:
    return png(base64.b64decode(block.data))


def test_initialize_lists_the_tools_with_schemas_an_agent_can_act_on(server: Server) -> None:
    async def work(session: ClientSession) -> Any:
        return await session.list_tools()

    tools = {tool.name: tool for tool in with_session(server, work).tools}
    assert set(tools) == {"generate_image", "edit_image", "list_models", "get_job", "cancel_job"}
    generate, edit = tools["generate_image"].input_schema, tools["edit_image"].input_schema
    assert generate["required"] == ["prompt"] and sorted(edit["required"]) == ["image", "prompt"]
    for schema in (generate, edit):
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{name} has no description"
        assert schema["additionalProperties"] is False
    assert {"size", "n", "seed", "quality", "negative_prompt", "background", "output_format", "lora"} <= set(
        generate["properties"]
    )
    assert generate["properties"]["n"]["maximum"] == 10
    assert "list_models" in tools["generate_image"].description
    assert tools["list_models"].annotations.read_only_hint is True


def test_generate_image_returns_decodable_images_of_the_asked_size_with_seed_and_url(server: Server) -> None:
    result = call(server, "generate_image", {**SMALL, "prompt": "a fox", "size": "96x64", "n": 2, "seed": 41})
    assert not result.is_error
    blocks = images(result)
    assert [block.mime_type for block in blocks] == ["image/png", "image/png"]
    assert [decoded(block).size for block in blocks] == [(96, 64), (96, 64)]
    said = text(result)
    assert "tiny-sd" in said and "96x64" in said and "seed 41" in said and "seed 42" in said
    urls = re.findall(r"https?://\S+/v1/temp-images/\S+", said)
    assert len(urls) == 2
    assert httpx.get(urls[0], timeout=30).content == base64.b64decode(blocks[0].data)  # the same image, no key


def test_generate_image_in_jpeg_has_its_mime_type(server: Server) -> None:
    result = call(server, "generate_image", {**SMALL, "prompt": "a fox", "output_format": "jpeg"})
    block = images(result)[0]
    assert block.mime_type == "image/jpeg" and base64.b64decode(block.data)[:2] == b"\xff\xd8"


def test_edit_image_keeps_the_size_of_a_base64_image_and_of_a_temp_url(server: Server) -> None:
    photo = base64.b64encode(png_bytes(Image.new("RGB", (80, 48), "teal"))).decode()
    edited = call(server, "edit_image", {**SMALL, "prompt": "make it red", "image": photo, "size": None})
    assert not edited.is_error, text(edited)
    assert decoded(images(edited)[0]).size == (80, 48)
    url = re.findall(r"https?://\S+/v1/temp-images/\S+", text(edited))[0]
    again = call(server, "edit_image", {**SMALL, "prompt": "now blue", "image": url, "size": None})
    assert not again.is_error, text(again)
    assert decoded(images(again)[0]).size == (80, 48)
    as_data_url = call(server, "edit_image", {**SMALL, "prompt": "x", "image": f"data:image/png;base64,{photo}"})
    assert not as_data_url.is_error, text(as_data_url)
    assert decoded(images(as_data_url)[0]).size == (64, 64)  # `size` given: the asked size


@pytest.mark.parametrize(
    ("tool", "arguments", "param"),
    [
        ("generate_image", {"prompt": "x", "model": "tiny-sd", "size": "65x64"}, "size"),
        ("generate_image", {"prompt": "x", "n": 11}, "n"),
        ("generate_image", {"prompt": "x", "steps": 4}, "steps"),
        ("generate_image", {"prompt": "x", "model": "tiny-sd", "lora": [{"name": "no-such-lora"}]}, "lora"),
        ("edit_image", {"prompt": "x", "image": "not an image!"}, "image"),
        ("edit_image", {"prompt": "x", "image": "https://example.com/cat.png"}, "image"),
    ],
)
def test_a_bad_argument_is_a_tool_error_with_openais_message_and_param(
    server: Server, tool: str, arguments: dict, param: str
) -> None:
    result = call(server, tool, arguments)
    assert result.is_error
    error = result.structured_content["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    assert error["message"] in text(result) and "Traceback" not in text(result)


def test_an_unknown_model_is_a_tool_error_listing_the_served_ones(server: Server) -> None:
    result = call(server, "generate_image", {"prompt": "x", "model": "stable-diffusion-9"})
    error = result.structured_content["error"]
    assert result.is_error and error["code"] == "model_not_found" and "tiny-sd" in error["message"]


def test_list_models_says_what_each_model_takes(server: Server) -> None:
    result = call(server, "list_models", {})
    models = {model["id"]: model for model in result.structured_content["models"]}
    assert "tiny-sd" in models and models["tiny-sd"]["capabilities"]["max_n"] == 10
    assert json.loads(text(result)) == result.structured_content


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_no_key_or_a_wrong_key_is_401(server: Server, key: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream"} | ({"Authorization": f"Bearer {key}"} if key else {})
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = httpx.post(f"{server.url}/mcp", json=hello, headers=headers, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"

    async def connect() -> None:
        async with mcp_session(server, key):
            pass

    # The SDK's client reports a refused POST as an error response (it does not say the status).
    with pytest.raises(Exception):  # noqa: B017
        asyncio.run(connect())


def test_progress_notifications_arrive_step_by_step(server: Server) -> None:
    steps: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, total, message))

    async def work(session: ClientSession) -> CallToolResult:
        arguments = {**SMALL, "prompt": "a slow fox", "num_inference_steps": 8}
        return await session.call_tool("generate_image", arguments, progress_callback=on_progress)

    result = with_session(server, work)
    assert not result.is_error
    assert len(steps) >= 2
    done = [progress for progress, _, _ in steps]
    assert done == sorted(set(done)) and done[-1] == 8
    assert {total for _, total, _ in steps} == {8}
    assert steps[-1][2] == "step 8 of 8"


def test_an_mcp_call_leaves_the_request_log_line_and_counts_in_metrics(server: Server) -> None:
    def counted() -> float:
        page = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30).text
        line = re.search(
            r'imagegen_requests_total\{model="tiny-sd",route="/mcp",status="200",task="generate"\} (\S+)', page
        )
        return float(line.group(1)) if line else 0.0

    before = counted()
    seed = 918_273
    assert not call(server, "generate_image", {**SMALL, "prompt": "logged", "seed": seed}).is_error
    deadline = time.monotonic() + 30  # the line is written as the response ends
    while time.monotonic() < deadline and f"seed={seed}" not in server.log_path.read_text():
        time.sleep(0.1)
    line = next(line for line in server.log_path.read_text().splitlines() if f"seed={seed}" in line)
    assert "POST /mcp 200" in line and "model=tiny-sd" in line and "task=generate" in line and "size=64x64" in line
    assert counted() >= before + 1


def _job_tool(server: Server, tool: str, job_id: str, key: str = API_KEY) -> CallToolResult:
    async def run() -> CallToolResult:
        async with mcp_session(server, key) as session:
            return await session.call_tool(tool, {"id": job_id})

    return asyncio.run(run())


def test_get_job_and_cancel_job_see_the_callers_own_jobs(server: Server, client: OpenAI) -> None:
    _, made = submit(client, **SMALL_JOB)
    done = wait_for(client, made["id"])
    seen = _job_tool(server, "get_job", made["id"])
    assert not seen.is_error and seen.structured_content["status"] == "completed"
    assert seen.structured_content["result"] == done["result"]

    _, long = submit(client, **UNTIL_CANCELLED)
    cancelled = _job_tool(server, "cancel_job", long["id"])
    assert not cancelled.is_error and cancelled.structured_content["status"] == "cancelled"
    assert wait_for(client, long["id"])["status"] == "cancelled"

    # Another key's job is the same tool error as an unknown id: nothing to probe.
    for job_id, key in ((made["id"], "sk-other-key"), ("imgjob_" + "x" * 22, API_KEY)):
        refused = _job_tool(server, "get_job", job_id, key)
        assert refused.is_error and refused.structured_content["error"]["code"] == "job_not_found"
