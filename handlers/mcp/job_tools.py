"""The async jobs' tools: a job made over HTTP with `Prefer: respond-async`, looked at or
cancelled by an agent, through the same service (and the same per-key ownership) as the routes."""

from __future__ import annotations

from mcp_types import CallToolResult
from pydantic import BaseModel

from handlers.jobs import service
from handlers.mcp.image_tools import ToolCall
from handlers.mcp.results import json_result


def _key(call: ToolCall) -> str | None:
    return None if call.http is None else service.caller_key(call.http)


async def get_job(arguments: BaseModel, call: ToolCall) -> CallToolResult:
    return json_result(await service.get_job(call.services, _key(call), arguments.id))  # type: ignore[attr-defined]


async def cancel_job(arguments: BaseModel, call: ToolCall) -> CallToolResult:
    return json_result(await service.cancel_job(call.services, _key(call), arguments.id))  # type: ignore[attr-defined]
