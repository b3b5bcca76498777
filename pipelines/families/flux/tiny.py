"""A tiny random-weight FLUX.1 [dev] pipeline (`FluxPipeline`), built offline: a transformer over
2x2-packed 16-channel latents with the guidance embedding, CLIP and T5 prompts, FLUX.1's VAE."""

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


def build_tiny() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tokenizer_2 = t5_tokenizer()
    seeded()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_DIM,  # T5 d_model
        pooled_projection_dim=TEXT_DIM,  # CLIP pooled output
        guidance_embeds=True,  # FLUX.1-dev style: guidance_scale is an input
        axes_dims_rope=(4, 6, 6),  # must sum to attention_head_dim
    )
    # FLUX.1-dev scheduler config: resolution-dependent shift.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    # FLUX.1 VAE: 16 latent channels, no quant convs, shift + scale normalisation.
    vae = tiny_vae(16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=clip_text_encoder(with_projection=False),
        tokenizer=clip_tokenizer(),
        text_encoder_2=t5_text_encoder(vocab_size=len(tokenizer_2)),
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
