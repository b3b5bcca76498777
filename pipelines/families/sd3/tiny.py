"""A tiny random-weight Stable Diffusion 3.5 pipeline (`StableDiffusion3Pipeline`), built offline.

From the shared tiny parts (pipelines/families/tiny_parts.py): two CLIP text encoders with
projection plus T5 (tokenizers made in memory), the 4-level VAE at scale factor 8 with SD3's 16
latent channels and shift + scale, and an SD3.5 Large-style transformer (2x2 patches, RMS q/k norm).
T5 is twice as wide as one CLIP, as in the real model, because the pipeline zero-pads the two CLIP
hidden states (concatenated) to T5's width before joining them.
"""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import (
    TEXT_DIM,
    clip_text_encoder,
    clip_tokenizer,
    seeded,
    t5_text_encoder,
    t5_tokenizer,
    tiny_vae,
)

_LATENT_CHANNELS = 16
_CLIP_DIM = TEXT_DIM  # the tiny CLIPs' width (hidden and projection)
_T5_DIM = 2 * _CLIP_DIM  # room for both CLIPs' hidden states side by side


def _transformer() -> Any:
    from diffusers import SD3Transformer2DModel

    seeded()
    return SD3Transformer2DModel(
        sample_size=128,  # default size 1024 = 128 * 8
        patch_size=2,
        in_channels=_LATENT_CHANNELS,
        out_channels=_LATENT_CHANNELS,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=_T5_DIM,
        caption_projection_dim=32,
        pooled_projection_dim=2 * _CLIP_DIM,  # both CLIPs' pooled projections concatenated
        pos_embed_max_size=96,  # the real model's: latents up to 192 (1536 px) a side
        qk_norm="rms_norm",  # SD3.5
    )


def _scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    # SD3/SD3.5's scheduler_config.json: a fixed shift of 3.
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)


def build_tiny() -> Any:
    from diffusers import StableDiffusion3Pipeline

    tokenizer_3 = t5_tokenizer()
    # SD3's VAE: 16 channels, no quant convs, its own shift + scale normalisation.
    vae = tiny_vae(
        _LATENT_CHANNELS, scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False
    )
    return StableDiffusion3Pipeline(
        transformer=_transformer(),
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=clip_text_encoder(with_projection=True),
        tokenizer=clip_tokenizer(),
        text_encoder_2=clip_text_encoder(with_projection=True),
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=t5_text_encoder(vocab_size=len(tokenizer_3), d_model=_T5_DIM),
        tokenizer_3=tokenizer_3,
    )
