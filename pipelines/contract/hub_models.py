"""The catalog's real models: hub repositories pinned to a revision, with the settings their model
cards give (diffusers 0.42's own where the card is silent)."""

from __future__ import annotations

from pipelines.contract.model_spec import ModelSpec
from pipelines.contract.model_spec import styles as _styles

# Real models, pinned to a hub revision so a deploy never changes under us.
REAL: tuple[ModelSpec, ...] = (
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
        description="FLUX.1 [schnell], 1-4 steps (1024px). Apache-2.0; gated on the hub: accept its terms and set "
        "HF_TOKEN.",
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
        sizes=(
            (1328, 1328),
            (1664, 928),
            (928, 1664),
            (1472, 1140),
            (1140, 1472),
            (1584, 1056),
            (1056, 1584),
            (1024, 1024),
        ),
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
        description='FLUX.1 Kontext [dev] 12B (1024px): edits that follow an instruction ("make it night"), and '
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
