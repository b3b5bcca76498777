"""A tiny random-weight Z-Image-Turbo pipeline (`ZImagePipeline`), built offline.

From the shared tiny parts (pipelines/families/tiny_parts.py): seeded random weights, a tokenizer made in
memory (the byte-level Qwen3 one FLUX.2's tiny model has too), FLUX.1's 16-channel VAE layout at
scale factor 8 and the real model's scheduler. The transformer patches 2x2 itself, so sizes are multiples of 16.
"""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import SEED, qwen3_tokenizer, seeded, tiny_vae

_QWEN_WIDTH = 16
_LATENT_CHANNELS = 16
_DIM = 32  # transformer width; 2 heads of 16
_HEAD_AXES = (8, 4, 4)  # rope axes (caption/frame, height, width); sum = head dim


def _text_encoder(tokenizer: Any) -> Any:
    from transformers import Qwen3Config, Qwen3Model

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=_QWEN_WIDTH,
        intermediate_size=16,
        num_hidden_layers=2,  # the pipeline reads hidden_states[-2]
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,  # past the pipeline's 512-token prompts
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    seeded()
    return Qwen3Model(config).eval()


def _transformer() -> Any:
    import torch
    from diffusers import ZImageTransformer2DModel

    seeded()
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=_LATENT_CHANNELS,
        dim=_DIM,
        n_layers=1,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=_QWEN_WIDTH,
        axes_dims=list(_HEAD_AXES),
        axes_lens=[1024, 512, 512],  # the real model's: room for 512-token captions and 1024px+ images
    )
    # The pad tokens start as torch.empty (garbage, sometimes NaN); give them defined values.
    with torch.no_grad():
        generator = torch.Generator().manual_seed(SEED)
        transformer.x_pad_token.copy_(torch.randn(transformer.x_pad_token.shape, generator=generator))
        transformer.cap_pad_token.copy_(torch.randn(transformer.cap_pad_token.shape, generator=generator))
    return transformer.eval()


def _scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    # Z-Image-Turbo's scheduler_config.json: a fixed shift, no resolution-dependent shifting.
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)


def build_tiny() -> Any:
    from diffusers import ZImagePipeline

    tokenizer = qwen3_tokenizer()
    # FLUX.1's VAE, which Z-Image reuses: 16 channels, shift + scale, no quant convs.
    vae = tiny_vae(
        _LATENT_CHANNELS, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False
    )
    return ZImagePipeline(
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=_text_encoder(tokenizer),
        tokenizer=tokenizer,
        transformer=_transformer(),
    )
