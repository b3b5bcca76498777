"""The MCP server: the official SDK's low-level server with our tools, served over the Streamable
HTTP transport at /mcp (handlers/mcp/endpoint.py, which imports this on the first request).

Stateless (each POST carries everything; no session to pin to one process), so any number of
front containers can answer; responses are SSE streams so progress can go out before the result.
Keys are checked before this by the app's BearerAuth, as for /v1; the request's id, log line and
metrics come from the app's RequestLog around it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams
from starlette.requests import Request

from handlers.deps import Services
from handlers.mcp.image_tools import ToolCall
from handlers.mcp.progress import Report
from handlers.mcp.tools import BY_NAME, TOOLS

_INSTRUCTIONS = (
    "Image generation and editing on open diffusion models. Call list_models to see the models, their sizes "
    "and limits; generate_image makes images from a prompt, edit_image changes one (pass an image you got "
    "back, as its temp URL or base64). Results carry the images and, in text, each one's seed: send the "
    "seed again to remake an image."
)


def _progress(ctx: Any) -> Report | None:
    """Where the call's progress goes; None unless the client sent a progress token."""
    meta = (ctx.params or {}).get("_meta") or {}
    return ctx.session.report_progress if meta.get("progressToken") is not None else None


def build_server(services: Services) -> Server[Any]:
    async def list_tools(ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=[tool.listing() for tool in TOOLS])

    async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        tool = BY_NAME.get(params.name)
        if tool is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool {params.name!r}; see tools/list.")
        http = ctx.request if isinstance(ctx.request, Request) else None
        return await tool.call(params.arguments or {}, ToolCall(services, http, _progress(ctx)))

    return Server(
        "imagegen", version="0.1.0", instructions=_INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool
    )


def session_manager(services: Services, max_body_bytes: int) -> StreamableHTTPSessionManager:
    """A session manager for one start of the app (the SDK runs each once)."""
    return StreamableHTTPSessionManager(
        app=build_server(services), stateless=True, json_response=False, max_request_body_size=max_body_bytes
    )
