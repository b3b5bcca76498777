"""Full-size architectures from their published configs: built on the meta device (nothing allocated)
with the published sizes, and materialised with random weights into pipelines that run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipelines.families import ARCHITECTURES
from pipelines.families.flux.architecture import FLUX1_TRANSFORMER
from pipelines.families.flux2.architecture import FLUX2_KLEIN_4B_TRANSFORMER, FLUX2_VAE
from pipelines.families.full_size import (
    CLIP_L,
    FLUX1_VAE,
    QWEN3_4B,
    T5_XXL,
    Part,
    build,
    empty_module,
    materialise,
    parameter_count,
)
from pipelines.families.qwen_image.architecture import QWEN25_VL_7B, QWEN_IMAGE_TRANSFORMER, QWEN_IMAGE_VAE
from pipelines.families.sd.architecture import CLIP_H, SD2_UNET, SD2_VAE
from pipelines.families.zimage.architecture import Z_IMAGE_TRANSFORMER

# Published sizes the configs must reproduce (model cards, papers, the safetensors' sizes): the
# FLUX.1 transformer ~11.9B, SDXL's UNet ~2.57B, SD 2.1's UNet ~866M, Qwen-Image's MMDiT ~20B,
# Z-Image's ~6B, T5-XXL's encoder ~4.76B, Qwen3-4B ~4.0B, Qwen2.5-VL-7B ~8.3B.
PUBLISHED = {
    ("flux-schnell", "transformer"): 11.9e9,
    ("flux-dev", "transformer"): 11.9e9,
    ("flux-schnell", "text_encoder_2"): 4.76e9,
    ("sdxl-turbo", "unet"): 2.57e9,
    ("sd-turbo", "unet"): 866e6,
    ("qwen-image", "transformer"): 20.4e9,
    ("qwen-image", "text_encoder"): 8.29e9,
    ("z-image-turbo", "transformer"): 6.15e9,
    ("z-image-turbo", "text_encoder"): 4.02e9,
    ("flux2-klein", "text_encoder"): 4.02e9,
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_builds_on_meta_at_its_published_size(name: str) -> None:
    pipe = build(ARCHITECTURES[name])  # device "meta": nothing allocated
    for component, part in ARCHITECTURES[name].parts.items():
        module = getattr(pipe, component)
        assert {parameter.device.type for parameter in module.parameters()} == {"meta"}
        counted = parameter_count(module)
        assert counted == pytest.approx(part.published_parameters, rel=0.015), (component, counted)
        if (name, component) in PUBLISHED:
            assert counted == pytest.approx(PUBLISHED[name, component], rel=0.015), (component, counted)


def test_materialised_pipeline_runs_with_its_buffers_intact() -> None:
    """A scaled-down SD 2.1 through the same builder: real random weights on the CPU, an image out."""
    small = dataclasses.replace(
        ARCHITECTURES["sd-turbo"],
        parts={
            "unet": Part(
                "diffusers",
                "UNet2DConditionModel",
                {
                    **SD2_UNET,
                    "block_out_channels": [32, 64],
                    "attention_head_dim": [2, 4],
                    "layers_per_block": 1,
                    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                    "norm_num_groups": 8,
                    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
                    "cross_attention_dim": 32,
                },
            ),
            "text_encoder": Part(
                "transformers",
                "CLIPTextModel",
                {
                    **CLIP_H,
                    "hidden_size": 32,
                    "intermediate_size": 37,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                },
            ),
            "vae": Part(
                "diffusers",
                "AutoencoderKL",
                {**SD2_VAE, "block_out_channels": [8, 8, 8, 8], "layers_per_block": 1, "norm_num_groups": 4},
            ),
        },
    )
    pipe = build(small, "cpu", torch.float32)
    # Buffers computed in __init__ survive materialisation (CLIP's position ids are 0..76).
    positions = next(buffer for name, buffer in pipe.text_encoder.named_buffers() if name.endswith("position_ids"))
    assert positions.device.type == "cpu" and positions.flatten().tolist() == list(range(77))
    assert all(parameter.device.type == "cpu" for parameter in pipe.unet.parameters())
    with torch.inference_mode():
        image = pipe(
            prompt="a lighthouse",
            num_inference_steps=1,
            guidance_scale=0.0,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
        ).images[0]
    assert image.size == (64, 64)
    assert np.asarray(image).std() > 0  # random weights make noise, not a flat fill


def test_materialising_keeps_tied_weights_and_rotary_frequencies() -> None:
    small = Part(
        "transformers",
        "Qwen3ForCausalLM",
        {
            **QWEN3_4B,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "vocab_size": 300,
        },
    )
    reference = empty_module(small).model.rotary_emb.inv_freq.clone()
    model = materialise(empty_module(small), "cpu", torch.bfloat16)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # Qwen3-4B ties them: one tensor
    assert torch.equal(model.model.rotary_emb.inv_freq.float(), reference.to(torch.bfloat16).float())
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    assert model.model.norm.weight.float().eq(1).all()
    assert model.model.layers[0].self_attn.q_proj.weight.float().std() > 0


def _narrow(name: str) -> dict[str, dict]:
    """Each part of `name`'s published config with its widths and depths cut to a few units."""
    qwen3 = {
        **QWEN3_4B,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
    }
    vae = {"block_out_channels": [8, 8, 8, 8], "layers_per_block": 1, "norm_num_groups": 4}
    return {
        "z-image-turbo": {
            "transformer": {
                **Z_IMAGE_TRANSFORMER,
                "dim": 64,
                "n_layers": 1,
                "n_refiner_layers": 1,
                "n_heads": 2,
                "n_kv_heads": 2,
                "cap_feat_dim": 32,
                "axes_dims": [8, 12, 12],
            },
            "text_encoder": qwen3,
            "vae": {**FLUX1_VAE, **vae},
        },
        "qwen-image": {
            "transformer": {
                **QWEN_IMAGE_TRANSFORMER,
                "num_layers": 1,
                "attention_head_dim": 32,
                "num_attention_heads": 2,
                "joint_attention_dim": 32,
                "axes_dims_rope": [8, 12, 12],
            },
            "text_encoder": {
                **QWEN25_VL_7B,
                "text_config": {
                    **QWEN25_VL_7B["text_config"],
                    "hidden_size": 32,
                    "intermediate_size": 48,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "num_key_value_heads": 2,
                    "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
                },
                "vision_config": {
                    **QWEN25_VL_7B["vision_config"],
                    "depth": 1,
                    "hidden_size": 16,
                    "intermediate_size": 32,
                    "num_heads": 2,
                    "out_hidden_size": 32,
                    "fullatt_block_indexes": [0],
                },
            },
            "vae": {**QWEN_IMAGE_VAE, "base_dim": 8},
        },
        "flux2-klein": {
            "transformer": {
                **FLUX2_KLEIN_4B_TRANSFORMER,
                "num_layers": 1,
                "num_single_layers": 1,
                "attention_head_dim": 16,
                "num_attention_heads": 2,
                "joint_attention_dim": 96,
                "axes_dims_rope": [4, 4, 4, 4],
            },
            "text_encoder": {**qwen3, "num_hidden_layers": 28},  # the pipeline stacks layers 9, 18, 27
            "vae": {**FLUX2_VAE, **vae},
        },
        "flux-dev": {
            "transformer": {
                **FLUX1_TRANSFORMER,
                "guidance_embeds": True,
                "num_layers": 1,
                "num_single_layers": 1,
                "attention_head_dim": 16,
                "num_attention_heads": 2,
                "joint_attention_dim": 32,
                "pooled_projection_dim": 32,
                "axes_dims_rope": [4, 6, 6],
            },
            "text_encoder": {
                **CLIP_L,
                "hidden_size": 32,
                "intermediate_size": 37,
                "num_hidden_layers": 1,
                "num_attention_heads": 4,
                "projection_dim": 32,
            },
            "text_encoder_2": {**T5_XXL, "d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 1, "num_heads": 4},
            "vae": {**FLUX1_VAE, **vae},
        },
    }[name]


@pytest.mark.parametrize("name", ["z-image-turbo", "qwen-image", "flux2-klein", "flux-dev"])
def test_each_transformer_pipeline_runs_as_the_benchmark_calls_it(name: str) -> None:
    """The architectures the catalog has no tiny model of yet, narrowed, through the real pipeline
    class with the benchmark's tokenizers and call options (what a GPU run would call)."""
    arch = ARCHITECTURES[name]
    narrowed = _narrow(name)
    small = dataclasses.replace(
        arch, parts={key: dataclasses.replace(part, config=narrowed[key]) for key, part in arch.parts.items()}
    )
    pipe = build(small, "cpu", torch.float32)
    with torch.inference_mode():
        image = pipe(
            prompt="a lighthouse",
            num_inference_steps=2,
            guidance_scale=small.guidance,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            **small.call_options,
        ).images[0]
    assert image.size == (64, 64)
