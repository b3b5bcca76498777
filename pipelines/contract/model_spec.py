"""A catalog entry's shape: what a servable model is, as data (part of the contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipelines.contract.families import FamilyName

Task = Literal["generate", "edit", "variation"]


@dataclass(frozen=True)
class Style:
    """How a style changes what the model is given: a prompt template and a guidance scale."""

    template: str
    guidance: float


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry. Sizes are (width, height)."""

    id: str
    # "hub:<org>/<repo>" (with `revision`), "tiny:<family>", or a local diffusers folder.
    source: str
    family: FamilyName
    description: str
    revision: str | None = None
    # The hub repo's reduced-precision files ("fp16"), where it ships them beside fp32 ones: half
    # the download and the host memory. None: the repo's only files (often already bf16).
    variant: str | None = None
    tasks: tuple[Task, ...] = ("generate", "edit", "variation")
    default_size: tuple[int, int] = (512, 512)
    sizes: tuple[tuple[int, int], ...] = ((512, 512),)
    min_side: int = 256
    max_side: int = 1024
    multiple: int = 8
    # Steps per quality tier; "medium"/"high"/"auto" map onto these (see handlers).
    steps: dict[str, int] = field(default_factory=lambda: {"low": 1, "standard": 2, "hd": 4})
    max_steps: int = 50
    # Qwen-Image's scheduler divides by zero at one step (a black image): its entries say 2.
    min_steps: int = 1
    styles: dict[str, Style] = field(
        default_factory=lambda: {
            "natural": Style("{prompt}", 0.0),
            "vivid": Style("{prompt}, vivid colors, dramatic lighting, highly detailed", 0.0),
        }
    )
    max_n: int = 4
    negative_prompt: bool = True
    # Denoising strength when an edit has no mask and no transparency (image-to-image), and
    # for variations: how far from the input the result may wander.
    edit_strength: float = 0.6
    variation_strength: float = 0.7
    # Input images an edit may take: several only for models that use the others as references.
    max_input_images: int = 1
    # An edit with no mask (and no transparency) follows its prompt as an instruction on a
    # model that can ("make it night"); elsewhere it re-imagines the image (image-to-image).
    instruction_edits: bool = False
    # Whether the model can make a transparent background: every model can, by default, since the
    # matting model cuts the subject out after it (pipelines/matting/).
    transparent_background: bool = True
    gpu: str = "L4"
    # A single-file checkpoint's (source ending .safetensors) configs and tokenizers: a catalog id
    # of its family, or a diffusers folder. None: the family's catalog model.
    config: str | None = None
    # LoRAs offered with this model from the hub: name -> "hub:org/repo[@revision][/file.safetensors]".
    loras: dict[str, str] = field(default_factory=dict)
    owned_by: str = "imagegen"
    created: int = 1_735_689_600  # catalog entries have no real release moment; a fixed one
    # Host RAM (GiB) a Modal GPU container reserves for this model: loading reads the weights
    # through CPU memory (a CPU memory snapshot holds them there), so roughly the weights in
    # the GPU's dtype plus a margin. Modal reserves only 128 MiB unless asked.
    host_memory_gib: int = 16


VIVID = "{prompt}, vivid colors, dramatic lighting, highly detailed"


def styles(natural_guidance: float, vivid_guidance: float) -> dict[str, Style]:
    return {"natural": Style("{prompt}", natural_guidance), "vivid": Style(VIVID, vivid_guidance)}
