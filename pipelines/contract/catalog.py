"""The model catalog: what each servable model is, as data (part of the contract: both sides read it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

FamilyName = Literal["sd", "sdxl", "flux", "flux2"]
FAMILY_NAMES: tuple[FamilyName, ...] = get_args(FamilyName)  # each has an adapter and a tiny model
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
    tasks: tuple[Task, ...] = ("generate", "edit", "variation")
    default_size: tuple[int, int] = (512, 512)
    sizes: tuple[tuple[int, int], ...] = ((512, 512),)
    min_side: int = 256
    max_side: int = 1024
    multiple: int = 8
    # Steps per quality tier; "medium"/"high"/"auto" map onto these (see handlers).
    steps: dict[str, int] = field(default_factory=lambda: {"low": 1, "standard": 2, "hd": 4})
    max_steps: int = 50
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
    # Whether the model can make a transparent background.
    transparent_background: bool = False
    gpu: str = "L4"
    owned_by: str = "imagegen"
    created: int = 1_735_689_600  # catalog entries have no real release moment; a fixed one
    # Host RAM (GiB) a Modal GPU container reserves for this model: loading reads the weights
    # through CPU memory (a CPU memory snapshot holds them there), so roughly the weights in
    # the GPU's dtype plus a margin. Modal reserves only 128 MiB unless asked.
    host_memory_gib: int = 16


_VIVID = "{prompt}, vivid colors, dramatic lighting, highly detailed"


def _styles(natural_guidance: float, vivid_guidance: float) -> dict[str, Style]:
    return {"natural": Style("{prompt}", natural_guidance), "vivid": Style(_VIVID, vivid_guidance)}


# The built-in offline models: tiny random-weight pipelines of each family. They make noise,
# not pictures, but run every code path in seconds on a CPU.
def _tiny(family: FamilyName, name: str, **overrides: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "id": f"tiny-{family}",
        "source": f"tiny:{family}",
        "family": family,
        "description": f"Tiny random-weight {name} pipeline (noise; for tests and trying the API offline).",
        "sizes": ((256, 256), (512, 512), (1024, 1024), (1792, 1024), (1024, 1792)),
        "min_side": 64,
        "max_side": 1024,
        "default_size": (512, 512),
        "styles": _styles(0.0, 3.0),
        "max_n": 10,
        "gpu": "T4",
        "host_memory_gib": 4,
    }
    return ModelSpec(**{**fields, **overrides})


TINY = (
    _tiny("sd", "Stable Diffusion"),
    _tiny("sdxl", "SDXL"),
    # Built like FLUX.1-dev: guidance is a model input, and there is no negative prompt.
    _tiny("flux", "FLUX", multiple=16, styles=_styles(3.5, 5.0), negative_prompt=False),
    # Built like FLUX.2 [klein]: edits follow the prompt as an instruction, with references.
    _tiny("flux2", "FLUX.2 [klein]", multiple=16, styles=_styles(1.0, 1.0), negative_prompt=False,
          max_input_images=4, instruction_edits=True),
)

# Real models, pinned to a hub revision so a deploy never changes under us.
REAL = (
    ModelSpec(
        id="sd-turbo",
        source="hub:stabilityai/sd-turbo",
        revision="b261bac6fd2cf515557d5d0707481eafa0485ec2",
        family="sd",
        description="Stable Diffusion 2.1 distilled for 1-4 steps (512px). Non-commercial research license.",
        sizes=((512, 512), (768, 512), (512, 768)),
        default_size=(512, 512),
        min_side=256,
        max_side=768,
        steps={"low": 1, "standard": 2, "hd": 4},
        styles=_styles(0.0, 0.0),
        max_n=8,
        gpu="L4",
        host_memory_gib=8,
    ),
    ModelSpec(
        id="sdxl-turbo",
        source="hub:stabilityai/sdxl-turbo",
        revision="71153311d3dbb46851df1931d3ca6e939de83304",
        family="sdxl",
        description="SDXL distilled for 1-4 steps (512px). Non-commercial research license.",
        sizes=((512, 512), (768, 512), (512, 768)),
        default_size=(512, 512),
        min_side=256,
        max_side=1024,
        steps={"low": 1, "standard": 2, "hd": 4},
        styles=_styles(0.0, 0.0),
        max_n=8,
        gpu="L4",
        host_memory_gib=16,
    ),
    ModelSpec(
        id="sdxl-inpainting",
        source="hub:diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
        revision="115134f363124c53c7d878647567d04daf26e41e",
        family="sdxl",
        description="SDXL 1.0 fine-tuned for inpainting (1024px); edits only.",
        tasks=("edit", "variation"),
        sizes=((1024, 1024), (1152, 896), (896, 1152), (1344, 768), (768, 1344)),
        default_size=(1024, 1024),
        min_side=512,
        max_side=1536,
        steps={"low": 15, "standard": 25, "hd": 40},
        styles=_styles(7.5, 8.0),
        edit_strength=0.99,
        max_n=4,
        gpu="A10G",
        host_memory_gib=16,
    ),
    ModelSpec(
        id="flux-schnell",
        source="hub:black-forest-labs/FLUX.1-schnell",
        revision="741f7c3ce8b383c54771c7003378a50191e9efe9",
        family="flux",
        description="FLUX.1 [schnell], 1-4 steps (1024px). Apache-2.0; gated on the hub: accept its terms and set HF_TOKEN.",
        sizes=((1024, 1024), (1536, 1024), (1024, 1536), (1792, 1024), (1024, 1792), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=2048,
        multiple=16,
        steps={"low": 2, "standard": 4, "hd": 4},
        styles=_styles(0.0, 0.0),
        negative_prompt=False,
        max_n=4,
        gpu="H100",
        host_memory_gib=48,
    ),
    ModelSpec(
        id="flux2-klein",
        source="hub:black-forest-labs/FLUX.2-klein-4B",
        # The commit public deployments pin; the model card's own page could not be read from here.
        revision="e7b7dc27f91deacad38e78976d1f2b499d76a294",
        family="flux2",
        description="FLUX.2 [klein] 4B (1024px): 4-step generation, and edits that follow an instruction with up "
        "to 3 reference images. Apache-2.0.",
        sizes=((1024, 1024), (1536, 1024), (1024, 1536), (1024, 768), (768, 1024), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=2048,
        multiple=16,
        steps={"low": 2, "standard": 4, "hd": 4},  # distilled to 4 steps; more do not help
        styles=_styles(1.0, 1.0),  # guidance-distilled: the pipeline ignores guidance
        negative_prompt=False,
        max_n=4,
        max_input_images=4,
        instruction_edits=True,
        gpu="L40S",
        host_memory_gib=24,
    ),
)

CATALOG: dict[str, ModelSpec] = {spec.id: spec for spec in (*TINY, *REAL)}
DEFAULT_MODELS = tuple(spec.id for spec in TINY)

# A local folder's pipeline class tells us its family.
_FAMILY_BY_PIPELINE = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "FluxPipeline": "flux",
    "FluxImg2ImgPipeline": "flux",
    "FluxInpaintPipeline": "flux",
    "Flux2KleinPipeline": "flux2",
}


class UnknownModel(ValueError):
    """A model name that is neither in the catalog nor a usable local diffusers folder."""


def spec_for_folder(path: Path) -> ModelSpec:
    """A catalog entry for a local diffusers folder (`model_index.json` names its pipeline)."""
    index = path / "model_index.json"
    try:
        pipeline_class = json.loads(index.read_text())["_class_name"]
    except (OSError, ValueError, KeyError) as exc:
        raise UnknownModel(f"{path} is not a diffusers model folder (no readable model_index.json)") from exc
    family = _FAMILY_BY_PIPELINE.get(pipeline_class)
    if family is None:
        known = ", ".join(sorted(_FAMILY_BY_PIPELINE))
        raise UnknownModel(f"{path}: pipeline {pipeline_class} is not supported (supported: {known})")
    template = next(spec for spec in REAL if spec.family == family and "generate" in spec.tasks)
    tasks: tuple[Task, ...] = (
        ("edit", "variation") if pipeline_class.endswith("InpaintPipeline") else ("generate", "edit", "variation")
    )
    return replace(
        template,
        id=path.resolve().name,
        source=str(path.resolve()),
        revision=None,
        tasks=tasks,
        description=f"Local {pipeline_class} folder {path.resolve()}",
    )


def lookup(name: str) -> ModelSpec:
    """A catalog id, or a path to a local diffusers folder."""
    if name in CATALOG:
        return CATALOG[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return spec_for_folder(path)
    raise UnknownModel(f"unknown model {name!r}: not a catalog id ({', '.join(CATALOG)}) nor a diffusers folder")
