"""The model catalog: what each servable model is, as data (part of the contract: both sides read it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pipelines.contract.families import FAMILY_FACTS, FAMILY_NAMES, FamilyName
from pipelines.contract.safetensors_header import NotSafetensors, read_header

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
    # Whether the model can make a transparent background.
    transparent_background: bool = False
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


_VIVID = "{prompt}, vivid colors, dramatic lighting, highly detailed"


def _styles(natural_guidance: float, vivid_guidance: float) -> dict[str, Style]:
    return {"natural": Style("{prompt}", natural_guidance), "vivid": Style(_VIVID, vivid_guidance)}


# The built-in offline models: tiny random-weight pipelines of each family. They make noise,
# not pictures, but run every code path in seconds on a CPU. What differs from family to family
# is in the family's facts (pipelines/contract/families.py).
def _tiny(family: FamilyName) -> ModelSpec:
    facts = FAMILY_FACTS[family]
    fields: dict[str, Any] = {
        "id": f"tiny-{family}",
        "source": f"tiny:{family}",
        "family": family,
        "description": f"Tiny random-weight {facts.title} pipeline (noise; for tests and trying the API offline).",
        "sizes": ((256, 256), (512, 512), (1024, 1024), (1792, 1024), (1024, 1792)),
        "min_side": 64,
        "max_side": 1024,
        "default_size": (512, 512),
        "styles": _styles(*facts.tiny_guidance),
        "max_n": 10,
        "gpu": "T4",
        "host_memory_gib": 4,
    }
    return ModelSpec(**{**fields, **facts.tiny})


TINY = tuple(_tiny(family) for family in FAMILY_NAMES)

# Real models, pinned to a hub revision so a deploy never changes under us.
REAL = (
    ModelSpec(
        id="sd-turbo",
        source="hub:stabilityai/sd-turbo",
        revision="b261bac6fd2cf515557d5d0707481eafa0485ec2",
        variant="fp16",
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
        variant="fp16",
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
        variant="fp16",  # as its model card and official Space load it
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

# Each revision below was read in public sources that pin it; the settings are the model cards'
# and diffusers 0.42's own.
REAL += (
    ModelSpec(
        id="z-image-turbo",
        source="hub:Tongyi-MAI/Z-Image-Turbo",
        revision="f332072aa78be7aecdf3ee76d5c247082da564a6",
        family="zimage",
        description="Z-Image-Turbo 6B (1024px): 8-step text-to-image with strong text rendering, English and "
        "Chinese. Apache-2.0. Its transformer ships in fp32 only (about 33 GB to download).",
        sizes=((1024, 1024), (1152, 896), (896, 1152), (1344, 768), (768, 1344), (1280, 1280), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=2048,
        multiple=16,
        steps={"low": 4, "standard": 8, "hd": 9},  # diffusers' docstring says 8, the model card 9
        styles=_styles(0.0, 0.0),  # distilled: guidance 0
        negative_prompt=False,
        max_n=4,
        gpu="L40S",
        host_memory_gib=48,
    ),
    ModelSpec(
        id="qwen-image",
        source="hub:Qwen/Qwen-Image",
        revision="75e0b4be04f60ec59a75f475837eced720f823b6",
        family="qwen-image",
        description="Qwen-Image 20B (1328px): text-to-image with the best text rendering of the open models, "
        "true classifier-free guidance. Apache-2.0. About 58 GB in bf16.",
        sizes=((1328, 1328), (1664, 928), (928, 1664), (1472, 1140), (1140, 1472), (1584, 1056), (1056, 1584),
               (1024, 1024)),
        default_size=(1328, 1328),
        min_side=256,
        max_side=2048,
        multiple=16,
        steps={"low": 20, "standard": 30, "hd": 50},  # the model card's 50 is the top
        styles=_styles(4.0, 4.0),  # true_cfg_scale, as the model card
        min_steps=2,
        max_steps=100,
        max_n=2,
        gpu="H100",
        host_memory_gib=80,
    ),
    ModelSpec(
        id="flux-dev",
        source="hub:black-forest-labs/FLUX.1-dev",
        revision="3de623fc3c33e44ffbe2bad470d0f45bccf2eb21",
        family="flux",
        description="FLUX.1 [dev] 12B (1024px), guidance-distilled, 28 steps. FLUX.1 [dev] Non-Commercial "
        "License; gated on the hub: accept its terms and set HF_TOKEN.",
        sizes=((1024, 1024), (1536, 1024), (1024, 1536), (1344, 768), (768, 1344), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=2048,
        multiple=16,
        steps={"low": 14, "standard": 28, "hd": 50},
        styles=_styles(3.5, 4.5),  # guidance is a model input, not CFG
        negative_prompt=False,
        max_n=4,
        gpu="H100",
        host_memory_gib=48,
    ),
    ModelSpec(
        id="flux-kontext-dev",
        source="hub:black-forest-labs/FLUX.1-Kontext-dev",
        # The commit public deployments pin most recently; not confirmed as the repo's main.
        revision="24e9dedc4ef646698dc8eb4e18ae2cec3c9fea0d",
        family="flux-kontext",
        description="FLUX.1 Kontext [dev] 12B (1024px): edits that follow an instruction (\"make it night\"), and "
        "text-to-image. FLUX.1 [dev] Non-Commercial License; gated: accept its terms and set HF_TOKEN.",
        sizes=((1024, 1024), (1184, 880), (880, 1184), (1392, 752), (752, 1392), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=1568,
        multiple=16,
        steps={"low": 14, "standard": 28, "hd": 40},
        styles=_styles(2.5, 3.5),
        negative_prompt=False,
        max_n=4,
        instruction_edits=True,
        gpu="H100",
        host_memory_gib=48,
    ),
    ModelSpec(
        id="sd3.5-large-turbo",
        source="hub:stabilityai/stable-diffusion-3.5-large-turbo",
        # Pinned by public deployments since December 2024; not confirmed as the repo's main.
        revision="ec07796fc06b096cc56de9762974a28f4c632eda",
        family="sd3",
        description="Stable Diffusion 3.5 Large Turbo 8B (1024px), 4 steps. Stability AI Community License; gated: "
        "accept its terms and set HF_TOKEN.",
        sizes=((1024, 1024), (1152, 896), (896, 1152), (1344, 768), (768, 1344), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=1536,
        multiple=16,
        steps={"low": 2, "standard": 4, "hd": 8},
        styles=_styles(0.0, 0.0),  # distilled: guidance 0, so negative prompts do nothing
        negative_prompt=False,
        max_n=4,
        gpu="L40S",
        host_memory_gib=40,
    ),
    ModelSpec(
        id="sd3.5-medium",
        source="hub:stabilityai/stable-diffusion-3.5-medium",
        revision="b940f670f0eda2d07fbb75229e779da1ad11eb80",
        family="sd3",
        description="Stable Diffusion 3.5 Medium 2.5B (1024px), 40 steps with guidance. Stability AI Community "
        "License; gated: accept its terms and set HF_TOKEN.",
        sizes=((1024, 1024), (1152, 896), (896, 1152), (1344, 768), (768, 1344), (512, 512)),
        default_size=(1024, 1024),
        min_side=256,
        max_side=1440,
        multiple=16,
        steps={"low": 20, "standard": 28, "hd": 40},
        styles=_styles(4.5, 5.5),
        max_n=4,
        gpu="L4",
        host_memory_gib=24,
    ),
)

CATALOG: dict[str, ModelSpec] = {spec.id: spec for spec in (*TINY, *REAL)}
DEFAULT_MODELS = tuple(spec.id for spec in TINY)

# A local folder's pipeline class tells us its family.
_FAMILY_BY_PIPELINE = {pipeline: family for family, facts in FAMILY_FACTS.items() for pipeline in facts.pipelines}


def family_template(family: str) -> ModelSpec:
    """The family's first real model that generates: what a folder or file of that family is served like."""
    return next(spec for spec in REAL if spec.family == family and "generate" in spec.tasks)


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
    template = family_template(family)
    tasks: tuple[Task, ...] = (
        ("edit", "variation") if pipeline_class.endswith("InpaintPipeline") else ("generate", "edit", "variation")
    )
    return replace(
        template,
        id=path.resolve().name,
        source=str(path.resolve()),
        revision=None,
        variant=None,  # a folder's files are whatever it holds
        loras={},
        tasks=tasks,
        description=f"Local {pipeline_class} folder {path.resolve()}",
    )


_SINGLE_FILE = [facts for facts in FAMILY_FACTS.values() if facts.checkpoint_keys]
_SINGLE_FILE_FAMILIES = ", ".join(f.single_file_name or "" for f in _SINGLE_FILE[:-1]) + \
    f" or {_SINGLE_FILE[-1].single_file_name}"


def _family_of_checkpoint(keys: list[str]) -> FamilyName | None:
    """The family whose checkpoint markers the keys have (A1111/ComfyUI layouts)."""
    def has(prefixes: tuple[str, ...]) -> bool:
        return any(key.startswith(prefixes) for key in keys) if prefixes else False

    return next((family for family, facts in FAMILY_FACTS.items()
                 if has(facts.checkpoint_keys) and not has(facts.checkpoint_keys_unless)), None)


def _safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a .safetensors file, not its data."""
    try:
        return [key for key in read_header(path) if key != "__metadata__"]
    except NotSafetensors as exc:
        raise UnknownModel(str(exc)) from None


def spec_for_file(path: Path) -> ModelSpec:
    """A catalog entry for a single-file checkpoint, its family read from the file's keys."""
    keys = _safetensors_keys(path)
    family = _family_of_checkpoint(keys)
    if family is None:
        raise UnknownModel(f"{path}: not a single-file checkpoint of {_SINGLE_FILE_FAMILIES} (none of its "
                           f"{len(keys)} tensor names is laid out like one; a LoRA goes in IMAGEGEN_LORA_DIR)")
    for prefix, why in FAMILY_FACTS[family].checkpoint_refused:
        if any(key.startswith(prefix) for key in keys):
            raise UnknownModel(f"{path}: {why}")
    template = family_template(family)
    return replace(template, id=path.resolve().stem, source=str(path.resolve()), revision=None, variant=None,
                   loras={}, config=template.id, tasks=("generate", "edit", "variation"),
                   description=f"Single-file {family} checkpoint {path.resolve()}")


def lookup(name: str, extra: tuple[ModelSpec, ...] = ()) -> ModelSpec:
    """A catalog id (or an id among `extra`, an operator's own entries), or a path to a local
    diffusers folder."""
    for spec in extra:
        if spec.id == name:
            return spec
    if name in CATALOG:
        return CATALOG[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return spec_for_folder(path)
    if path.is_file() and path.suffix == ".safetensors":
        return spec_for_file(path)
    raise UnknownModel(f"unknown model {name!r}: not a catalog id ({', '.join(CATALOG)}), a diffusers folder, nor "
                       "a single-file .safetensors checkpoint")
