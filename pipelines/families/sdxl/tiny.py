"""A tiny random-weight SDXL pipeline (`StableDiffusionXLPipeline`), built offline: the small UNet
with SDXL's micro-conditioning, two CLIP text encoders (the second with projection)."""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import TEXT_DIM, clip_text_encoder, clip_tokenizer, euler_scheduler, tiny_vae, unet


def build_tiny() -> Any:
    from diffusers import StableDiffusionXLPipeline

    time_embed_dim = 8
    denoiser = unet(
        sample_size=128,
        # SDXL concatenates both encoders' penultimate hidden states.
        cross_attention_dim=2 * TEXT_DIM,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # 6 micro-conditioning ints (orig size, crop, target size) + pooled text_embeds.
        projection_class_embeddings_input_dim=6 * time_embed_dim + TEXT_DIM,
    )
    return StableDiffusionXLPipeline(
        vae=tiny_vae(4, scaling_factor=0.13025),
        text_encoder=clip_text_encoder(with_projection=False),
        text_encoder_2=clip_text_encoder(with_projection=True),
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(),
        unet=denoiser,
        scheduler=euler_scheduler(),
    )
