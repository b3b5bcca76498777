"""Stable Diffusion 2.1 at full size (sd-turbo), from its published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import KL_BLOCKS, TURBO_EULER, Architecture, Part, clip
from pipelines.families.sd.adapter import NO_SAFETY_CHECKER

# OpenCLIP ViT-H/14 text tower: stabilityai/sd-turbo (SD 2.1) `text_encoder/config.json`.
CLIP_H = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
# stabilityai/sd-turbo `vae/config.json` (SD 2.x's VAE).
SD2_VAE = {**KL_BLOCKS, "latent_channels": 4, "scaling_factor": 0.18215, "sample_size": 768}
# stabilityai/sd-turbo `unet/config.json` (SD 2.1's UNet).
SD2_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280],
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

ARCHITECTURES = (
    Architecture(
        "sd-turbo",
        "StableDiffusionPipeline",
        {
            "unet": Part("diffusers", "UNet2DConditionModel", SD2_UNET, 865.9e6),
            "text_encoder": clip(CLIP_H, False, 340.4e6),
            "vae": Part("diffusers", "AutoencoderKL", SD2_VAE, 83.7e6),
        },
        TURBO_EULER,
        {"tokenizer": "clip"},
        size=(512, 512),
        steps=1,
        guidance=0.0,
        catalog_id="sd-turbo",
        family="sd",
        pipeline_options=NO_SAFETY_CHECKER,
    ),
)
