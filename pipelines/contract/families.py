"""The model families, as plain facts: the one list of them (part of the contract: both sides read it).

Each entry says what identifies the family's weights (the pipeline class a diffusers folder names,
the tensor names of a single-file checkpoint) and how its built-in tiny model is served. What the
family does with a loaded model (its quirks, its tiny builder, its full-size architecture) is on
the model side, in `pipelines/families/<family>/`, keyed by the same names.

Adding a family: an entry here, a folder there (and catalog entries for its real models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A family's name as the catalog, the models file and the LoRA folder spell it ("sd", "qwen-image").
FamilyName = str


@dataclass(frozen=True)
class FamilyFacts:
    """What the contract knows of one family."""

    # What the tiny model's description calls it ("Tiny random-weight {title} pipeline").
    title: str
    # The pipeline classes a diffusers folder's model_index.json may name for this family.
    pipelines: tuple[str, ...]
    # Single-file checkpoints (A1111/ComfyUI layouts): the diffusers pipeline that reads them, what
    # the family is called in messages about them, and the tensor-name prefixes that mark one. A
    # file is of the family when one of its tensor names starts with a marker and none with an
    # `unless` prefix; `refused` prefixes mark files of the family that cannot be served, and why.
    single_file_pipeline: str | None = None
    single_file_name: str | None = None
    checkpoint_keys: tuple[str, ...] = ()
    checkpoint_keys_unless: tuple[str, ...] = ()
    checkpoint_refused: tuple[tuple[str, str], ...] = ()
    # The tiny catalog entry: its styles' (natural, vivid) guidance and what else differs from the
    # tiny defaults (catalog.ModelSpec's fields).
    tiny_guidance: tuple[float, float] = (0.0, 3.0)
    tiny: dict[str, Any] = field(default_factory=dict)
    # The side of one latent patch the denoiser sees as a token, in latent pixels: 2x2 for the
    # transformers (packed or patchified), 1 for a UNet (every latent position). `usage` counts them.
    latent_patch: int = 2


FAMILY_FACTS: dict[FamilyName, FamilyFacts] = {
    "sd": FamilyFacts(
        "Stable Diffusion",
        ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
        single_file_pipeline="StableDiffusionPipeline",
        single_file_name="SD",
        checkpoint_keys=("model.diffusion_model.input_blocks.",),  # Stable Diffusion's LDM UNet
        checkpoint_keys_unless=("conditioner.embedders.",),  # SDXL's has the same UNet names
        checkpoint_refused=(
            (
                "cond_stage_model.transformer.",
                "a Stable Diffusion 1.x checkpoint; the catalog's "
                "SD configs are 2.x. Serve it through a models file entry whose `config` is an SD 1.5 "
                "diffusers folder.",
            ),
        ),
        latent_patch=1,
    ),
    "sdxl": FamilyFacts(
        "SDXL",
        ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"),
        single_file_pipeline="StableDiffusionXLPipeline",
        single_file_name="SDXL",
        checkpoint_keys=("conditioner.embedders.",),  # SDXL's two text encoders
        latent_patch=1,
    ),
    # Built like FLUX.1-dev: guidance is a model input, and there is no negative prompt.
    "flux": FamilyFacts(
        "FLUX",
        ("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"),
        single_file_pipeline="FluxPipeline",
        single_file_name="FLUX.1",
        # As Black Forest Labs ship it (transformer only), and as ComfyUI saves it.
        checkpoint_keys=("double_blocks.", "model.diffusion_model.double_blocks."),
        tiny_guidance=(3.5, 5.0),
        tiny={"multiple": 16, "negative_prompt": False},
    ),
    # Built like FLUX.2 [klein]: edits follow the prompt as an instruction, with references.
    "flux2": FamilyFacts(
        "FLUX.2 [klein]",
        ("Flux2KleinPipeline",),
        tiny_guidance=(1.0, 1.0),
        tiny={"multiple": 16, "negative_prompt": False, "max_input_images": 4, "instruction_edits": True},
    ),
    # Built like Z-Image-Turbo: no guidance, so no negative prompt.
    "zimage": FamilyFacts(
        "Z-Image-Turbo",
        ("ZImagePipeline",),
        tiny_guidance=(0.0, 0.0),
        tiny={"multiple": 16, "negative_prompt": False},
    ),
    # Built like SD3.5 Large: an MMDiT with two CLIPs and T5.
    "sd3": FamilyFacts("Stable Diffusion 3.5", ("StableDiffusion3Pipeline",), tiny={"multiple": 16}),
    # Built like Qwen-Image: true CFG with a negative prompt; its scheduler needs 2 steps or more.
    "qwen-image": FamilyFacts(
        "Qwen-Image",
        ("QwenImagePipeline",),
        tiny_guidance=(1.0, 4.0),
        tiny={"multiple": 16, "steps": {"low": 2, "standard": 2, "hd": 4}, "min_steps": 2},
    ),
    # Built like FLUX.1 Kontext [dev]: edits follow the prompt as an instruction on one image.
    "flux-kontext": FamilyFacts(
        "FLUX.1 Kontext",
        ("FluxKontextPipeline",),
        tiny_guidance=(2.5, 3.5),
        tiny={"multiple": 16, "negative_prompt": False, "instruction_edits": True},
    ),
}
FAMILY_NAMES: tuple[FamilyName, ...] = tuple(FAMILY_FACTS)  # each has an adapter and a tiny model
