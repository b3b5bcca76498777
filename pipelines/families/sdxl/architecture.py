"""SDXL at full size (sdxl-turbo), from its published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import CLIP_L, KL_BLOCKS, TURBO_EULER, Architecture, Part, clip

# OpenCLIP ViT-bigG/14 text tower: SDXL's `text_encoder_2/config.json` (CLIPTextModelWithProjection).
CLIP_BIG_G = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
# stabilityai/sdxl-turbo `vae/config.json` (SDXL's VAE).
SDXL_VAE = {**KL_BLOCKS, "latent_channels": 4, "scaling_factor": 0.13025, "sample_size": 1024, "force_upcast": True}
# stabilityai/sdxl-turbo `unet/config.json` (SDXL base's UNet).
SDXL_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280],
    "attention_head_dim": [5, 10, 20],
    "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "use_linear_projection": True,
    "norm_num_groups": 32,
}

ARCHITECTURES = (
    Architecture(
        "sdxl-turbo",
        "StableDiffusionXLPipeline",
        {
            "unet": Part("diffusers", "UNet2DConditionModel", SDXL_UNET, 2.567e9),
            "text_encoder": clip(CLIP_L, False, 123.1e6),
            "text_encoder_2": clip(CLIP_BIG_G, True, 694.7e6),
            "vae": Part("diffusers", "AutoencoderKL", SDXL_VAE, 83.7e6),
        },
        TURBO_EULER,
        {"tokenizer": "clip", "tokenizer_2": "clip"},
        size=(512, 512),
        steps=4,
        guidance=0.0,
        catalog_id="sdxl-turbo",
        family="sdxl",
    ),
)
