"""A tiny random-weight Stable Diffusion 3.5 pipeline (`StableDiffusion3Pipeline`), built offline.

As `pipelines/tiny.py` does for the older families, and from its parts: two CLIP text encoders with
projection plus T5 (tokenizers made in memory), the 4-level VAE at scale factor 8 with SD3's 16
latent channels and shift + scale, and an SD3.5 Large-style transformer (2x2 patches, RMS q/k norm).
T5 is twice as wide as one CLIP, as in the real model, because the pipeline zero-pads the two CLIP
hidden states (concatenated) to T5's width before joining them.

Facts the host needs (read from diffusers 0.42.1's `pipeline_stable_diffusion_3.py`):
- `pipe.vae_scale_factor` is 8; height and width must be multiples of 16
  (`vae_scale_factor * pipe.patch_size`), otherwise the pipeline raises.
- Step-callback `latents` are plain VAE latents, shape (B, 16, H/8, W/8); the pipeline decodes
  `latents / scaling_factor + shift_factor` (the family's preview in pipelines/families does the same).
- Classic CFG: `guidance_scale` (default 7.0, CFG when > 1) with `negative_prompt` (and
  `negative_prompt_2`/`_3`); SD3.5 Large Turbo would be run with `guidance_scale=0.0`.
"""

from __future__ import annotations

from typing import Any

_SEED = 0
_LATENT_CHANNELS = 16
_CLIP_DIM = 32  # tiny.py's CLIP width (hidden and projection)
_T5_DIM = 2 * _CLIP_DIM  # room for both CLIPs' hidden states side by side


def _seeded() -> None:
    import torch

    torch.manual_seed(_SEED)


def _transformer() -> Any:
    from diffusers import SD3Transformer2DModel

    _seeded()
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


def build_sd3() -> Any:
    from diffusers import StableDiffusion3Pipeline

    from pipelines.tiny import _clip_text_encoder, _clip_tokenizer, _t5_text_encoder, _t5_tokenizer, tiny_vae

    tokenizer_3 = _t5_tokenizer()
    # SD3's VAE: 16 channels, no quant convs, its own shift + scale normalisation.
    vae = tiny_vae(
        _LATENT_CHANNELS, scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False
    )
    return StableDiffusion3Pipeline(
        transformer=_transformer(),
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=_clip_text_encoder(with_projection=True),
        tokenizer=_clip_tokenizer(),
        text_encoder_2=_clip_text_encoder(with_projection=True),
        tokenizer_2=_clip_tokenizer(),
        text_encoder_3=_t5_text_encoder(vocab_size=len(tokenizer_3), d_model=_T5_DIM),
        tokenizer_3=tokenizer_3,
    )
