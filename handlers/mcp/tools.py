"""The tools this server offers agents, as one table: name, what an agent reads, arguments, body.

A tool is one entry: its arguments a pydantic model (the schema an agent reads), its body one
function that answers a `CallToolResult`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult, Tool, ToolAnnotations
from pydantic import BaseModel, ValidationError

from handlers.http_errors import from_validation
from handlers.mcp import image_tools, job_tools
from handlers.mcp.arguments import EditImageArguments, GenerateImageArguments, JobArguments, ListModelsArguments
from handlers.mcp.image_tools import ToolCall
from handlers.mcp.results import error_result
from pipelines.contract import errors
from pipelines.contract.errors import APIError

log = logging.getLogger("imagegen")


@dataclass(frozen=True)
class ImageTool:
    name: str
    title: str
    description: str
    arguments: type[BaseModel]
    run: Callable[[BaseModel, ToolCall], Awaitable[CallToolResult]]
    read_only: bool = False

    def listing(self) -> Tool:
        return Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.arguments.model_json_schema(),
            annotations=ToolAnnotations(
                title=self.title, read_only_hint=self.read_only, destructive_hint=False, open_world_hint=False
            ),
        )

    async def call(self, arguments: dict[str, Any], call: ToolCall) -> CallToolResult:
        """The tool's answer; every failure a tool error in OpenAI's shape, never a stack trace."""
        try:
            return await self.run(self.arguments.model_validate(arguments), call)
        except APIError as error:
            return error_result(error)
        except ValidationError as error:
            return error_result(from_validation(error.errors()))
        except Exception:
            log.exception("MCP tool %s failed", self.name)
            return error_result(errors.internal_error())


_RESULT = (
    "Returns each image as an image content block (base64, with its MIME type) and a text block with "
    "each image's seed, the size, the model and a temp URL (valid for the server's image TTL) that "
    "`edit_image` accepts as its `image`. When the client sends a progress token, the denoising steps "
    "are reported as progress (step of steps)."
)

TOOLS = (
    ImageTool(
        name="generate_image",
        title="Generate an image",
        description="Make images from a text prompt with a diffusion model served here. Describe the picture "
        "in `prompt`; `size`, `model` and `n` must be within what `list_models` says the model takes "
        f"(otherwise the error names the argument and the bounds). {_RESULT}",
        arguments=GenerateImageArguments,
        run=image_tools.generate_image,
    ),
    ImageTool(
        name="edit_image",
        title="Edit an image",
        description="Change an image as `prompt` says. With a `mask` (alpha = 0 where to repaint) only that "
        "area changes and every other pixel is kept exactly; without one, the image's own transparent "
        "pixels are repainted, or else the whole image is reworked (instruction-following models edit it "
        "as told; others re-imagine it close to the original). The result has the input's size unless "
        f"`size` says otherwise. {_RESULT}",
        arguments=EditImageArguments,
        run=image_tools.edit_image,
    ),
    ImageTool(
        name="list_models",
        title="List image models",
        description="The image models this server serves: for each, its id and aliases, what it does "
        "(tasks: generate, edit, variation; edits by instruction or image-to-image), its sizes (a list of "
        "common ones, the default, min/max side and the multiple any `WxH` must be on), max n, how many "
        "input images an edit takes, whether it takes a negative prompt, its LoRAs, and whether it is "
        "loaded. Call it before choosing `model` or `size`.",
        arguments=ListModelsArguments,
        run=image_tools.list_models,
        read_only=True,
    ),
    ImageTool(
        name="get_job",
        title="Look at an image job",
        description="An async image job (one made by an HTTP request sent with `Prefer: respond-async`): its "
        "`status` (queued, in_progress, completed, failed, cancelled), its `progress` (steps done of steps, "
        "images done), and once `completed` its `result`, the body the synchronous call would have answered "
        "(images as URLs or base64), or once `failed` its `error`. Poll it until the status is final.",
        arguments=JobArguments,
        run=job_tools.get_job,
        read_only=True,
    ),
    ImageTool(
        name="cancel_job",
        title="Cancel an image job",
        description="Cancel a queued or running async image job: a running one stops at its next denoising step "
        "and frees its place. Answers the job, now `cancelled` (a job already finished is answered as it is).",
        arguments=JobArguments,
        run=job_tools.cancel_job,
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}
