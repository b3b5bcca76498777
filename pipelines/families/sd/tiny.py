"""A tiny random-weight Stable Diffusion 2.x pipeline (`StableDiffusionPipeline`), built offline:
the small UNet over 4 latent channels, one CLIP text encoder, SD's VAE scale."""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import TEXT_DIM, clip_text_encoder, clip_tokenizer, euler_scheduler, tiny_vae, unet


def build_tiny() -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=tiny_vae(4, scaling_factor=0.18215),
        text_encoder=clip_text_encoder(with_projection=False),
        tokenizer=clip_tokenizer(),
        unet=unet(sample_size=64, cross_attention_dim=TEXT_DIM),
        scheduler=euler_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
